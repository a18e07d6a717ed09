import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Platform } from '../platform.ts';
import type { Repository } from '../stores/repository.repository.ts';

/**
 * Push webhooks from GitHub and GitLab: verify, record the delivery, and
 * enqueue an incremental reindex of the pushed branch. Verification comes
 * before anything is written or enqueued.
 */

export type Provider = 'github' | 'gitlab';

export type WebhookOutcome =
  | { status: 401; outcome: 'bad_signature'; message: string }
  | { status: 400; outcome: 'malformed'; message: string }
  | { status: 200; outcome: 'pong' | 'duplicate'; message: string }
  | { status: 202; outcome: 'queued'; message: string; jobId: string; repository: string; branch: string }
  | { status: 202; outcome: 'ignored'; message: string };

/** host/path of a Git URL, lower-cased, without scheme, credentials, `.git` or trailing slash: https and ssh forms of one repository compare equal. */
export function normalizeRepoUrl(url: string): string | null {
  const trimmed = url.trim();
  const scp = /^[\w.-]+@([\w.-]+):(.+)$/.exec(trimmed);
  let host: string;
  let pathname: string;
  if (scp) {
    host = scp[1]!;
    pathname = scp[2]!;
  } else {
    try {
      const u = new URL(trimmed);
      host = u.hostname;
      pathname = u.pathname;
    } catch {
      return null;
    }
  }
  return `${host.toLowerCase()}/${pathname.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '').toLowerCase()}`;
}

/**
 * Constant-time string comparison. Digests first: timingSafeEqual needs equal
 * lengths, and returning early on a length mismatch would tell a caller how
 * long a GitLab secret token is.
 */
function safeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** GitHub's X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body. */
export function verifyGithubSignature(secret: string, rawBody: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
  return safeEqual(expected, header);
}

interface PushInfo {
  urls: string[];
  ref: string | undefined;
  deleted: boolean;
}

function githubPush(payload: Record<string, unknown>): PushInfo {
  const repo = (payload.repository ?? {}) as Record<string, unknown>;
  const urls = ['clone_url', 'html_url', 'ssh_url', 'git_url', 'url'].map((k) => repo[k]).filter((v): v is string => typeof v === 'string');
  return {
    urls,
    ref: typeof payload.ref === 'string' ? payload.ref : undefined,
    deleted: payload.deleted === true || payload.after === '0000000000000000000000000000000000000000',
  };
}

function gitlabPush(payload: Record<string, unknown>): PushInfo {
  const project = (payload.project ?? {}) as Record<string, unknown>;
  const repository = (payload.repository ?? {}) as Record<string, unknown>;
  const urls = [project.git_http_url, project.git_ssh_url, project.web_url, repository.git_http_url, repository.homepage].filter(
    (v): v is string => typeof v === 'string',
  );
  return {
    urls,
    ref: typeof payload.ref === 'string' ? payload.ref : undefined,
    deleted: payload.after === '0000000000000000000000000000000000000000',
  };
}

export function createWebhookService(platform: Platform, options: { globalSecret: string | undefined }) {
  const pg = platform.stores.postgres.pool;

  /** Matching repositories, each with the secrets it accepts now: its own, and its previous one until that one's deadline. */
  async function candidates(urls: string[]): Promise<Array<Repository & { webhookSecrets: string[] }>> {
    const wanted = new Set(urls.map(normalizeRepoUrl).filter((u): u is string => u !== null));
    if (wanted.size === 0) return [];
    const { rows } = await pg.query<{ id: string; source_url: string; webhook_secret: string | null; previous: string | null }>(
      `SELECT id, source_url, webhook_secret,
              CASE WHEN previous_webhook_secret_until > now() THEN previous_webhook_secret END AS previous
         FROM repositories WHERE source_url IS NOT NULL`,
    );
    const matches = rows.filter((r) => wanted.has(normalizeRepoUrl(r.source_url) ?? ''));
    const repos = await Promise.all(matches.map((m) => platform.repositories.findById(Number(m.id))));
    return repos.flatMap((r, i) => {
      const m = matches[i]!;
      return r ? [{ ...r, webhookSecrets: [m.webhook_secret, m.previous].filter((x): x is string => !!x) }] : [];
    });
  }

  /**
   * The global secrets accepted now: WEBHOOK_SECRET_FILE's value as this process last read it (a rotation
   * tells every process to re-read it), else WEBHOOK_SECRET; and a rotated-away value until its deadline.
   */
  async function globalSecrets(): Promise<string[]> {
    const current = platform.secrets?.webhook?.value ?? options.globalSecret;
    if (!platform.secrets?.webhook) return current ? [current] : [];
    const { rows } = await pg.query<{ previous_value: string }>(
      `SELECT previous_value FROM secret_grace WHERE name = 'webhook-secret' AND valid_until > now()`,
    );
    return [current, rows[0]?.previous_value].filter((x): x is string => !!x);
  }

  /** Records a delivery once; false when this delivery id was seen before. */
  async function record(provider: Provider, deliveryId: string, event: string, repositoryId: number | null, outcome: string, jobId?: string): Promise<boolean> {
    const { rowCount } = await pg.query(
      `INSERT INTO webhook_deliveries (provider, delivery_id, event, repository_id, outcome, job_id)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [provider, deliveryId, event, repositoryId, outcome, jobId ?? null],
    );
    return (rowCount ?? 0) > 0;
  }

  async function seen(provider: Provider, deliveryId: string): Promise<boolean> {
    const { rowCount } = await pg.query(`SELECT 1 FROM webhook_deliveries WHERE provider = $1 AND delivery_id = $2`, [provider, deliveryId]);
    return (rowCount ?? 0) > 0;
  }

  async function handle(
    provider: Provider,
    input: { rawBody: Buffer; event: string | undefined; deliveryId: string | undefined; verify: (secret: string) => boolean },
  ): Promise<WebhookOutcome> {
    let payload: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(input.rawBody.toString('utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      payload = parsed as Record<string, unknown>;
    } catch {
      return { status: 400, outcome: 'malformed', message: 'the body is not a JSON object' };
    }
    const push = provider === 'github' ? githubPush(payload) : gitlabPush(payload);
    const repos = await candidates(push.urls);
    // The secret of the repository the payload names, else the global one; nothing is trusted before one verifies.
    const verified = repos.find((r) => r.webhookSecrets.some((secret) => input.verify(secret)));
    const globallyVerified = !verified && (await globalSecrets()).some((secret) => input.verify(secret));
    if (!verified && !globallyVerified) {
      return { status: 401, outcome: 'bad_signature', message: provider === 'github' ? 'X-Hub-Signature-256 does not match' : 'X-Gitlab-Token does not match' };
    }
    const event = input.event ?? 'unknown';
    const deliveryId = input.deliveryId;
    if (deliveryId && (await seen(provider, deliveryId))) {
      return { status: 200, outcome: 'duplicate', message: `delivery ${deliveryId} was already received` };
    }
    const isPing = provider === 'github' ? event === 'ping' : false;
    const isPush = provider === 'github' ? event === 'push' : event === 'Push Hook';
    const repo = verified ?? repos[0];

    const finish = async (outcome: WebhookOutcome): Promise<WebhookOutcome> => {
      if (deliveryId) {
        const first = await record(provider, deliveryId, event, repo?.id ?? null, outcome.outcome, 'jobId' in outcome ? outcome.jobId : undefined);
        if (!first) return { status: 200, outcome: 'duplicate', message: `delivery ${deliveryId} was already received` };
      }
      return outcome;
    };

    if (isPing) return finish({ status: 200, outcome: 'pong', message: 'pong' });
    if (!isPush) return finish({ status: 202, outcome: 'ignored', message: `event "${event}" is not a push: ignored` });
    if (!repo) return finish({ status: 202, outcome: 'ignored', message: 'no registered repository matches this push' });
    if (!push.ref?.startsWith('refs/heads/')) return finish({ status: 202, outcome: 'ignored', message: `ref ${push.ref ?? '(none)'} is not a branch: ignored` });
    const branch = push.ref.slice('refs/heads/'.length);
    if (push.deleted) return finish({ status: 202, outcome: 'ignored', message: `branch ${branch} was deleted: ignored` });
    const registered = await platform.repositories.getBranch(repo.id, branch);
    if (!registered) return finish({ status: 202, outcome: 'ignored', message: `branch ${branch} of ${repo.name} is not indexed: ignored` });

    // Enqueue after recording: a redelivery racing this one finds the record and stops there.
    if (deliveryId && !(await record(provider, deliveryId, event, repo.id, 'queued'))) {
      return { status: 200, outcome: 'duplicate', message: `delivery ${deliveryId} was already received` };
    }
    const { id } = await platform.queues.enqueue('index-repository', { repositoryId: repo.id, branch, full: false });
    if (deliveryId) await pg.query(`UPDATE webhook_deliveries SET job_id = $3 WHERE provider = $1 AND delivery_id = $2`, [provider, deliveryId, id]);
    return { status: 202, outcome: 'queued', message: `reindex of ${repo.name}@${branch} queued`, jobId: id, repository: repo.name, branch };
  }

  return {
    github(rawBody: Buffer, headers: Record<string, string | string[] | undefined>) {
      const h = (name: string) => (typeof headers[name] === 'string' ? (headers[name] as string) : undefined);
      return handle('github', {
        rawBody,
        event: h('x-github-event'),
        deliveryId: h('x-github-delivery'),
        verify: (secret) => verifyGithubSignature(secret, rawBody, h('x-hub-signature-256')),
      });
    },
    gitlab(rawBody: Buffer, headers: Record<string, string | string[] | undefined>) {
      const h = (name: string) => (typeof headers[name] === 'string' ? (headers[name] as string) : undefined);
      const token = h('x-gitlab-token');
      return handle('gitlab', {
        rawBody,
        event: h('x-gitlab-event'),
        deliveryId: h('x-gitlab-event-uuid') ?? h('idempotency-key'),
        verify: (secret) => token !== undefined && safeEqual(secret, token),
      });
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
