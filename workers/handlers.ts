import type { Job } from 'bullmq';
import type { Config } from '../shared/config/config.ts';
import type { Logger } from '../shared/logger.ts';
import type { JobName } from '../shared/queue/jobs.ts';
import type { Stores } from '../shared/stores/stores.ts';

export interface WorkerDeps {
  stores: Stores;
  logger: Logger;
  config: Config;
}

export type Handlers = { [N in JobName]: (job: Job) => Promise<unknown> };

/** Maps every job in the registry to its handler; a missing entry is a compile error. */
export function HANDLERS(_deps: WorkerDeps): Handlers {
  return {};
}
