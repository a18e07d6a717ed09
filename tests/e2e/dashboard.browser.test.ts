import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { silentLogger } from '../helpers/context.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Bull Board in real headless Chromium: an admin signs in, sees every queue and a finished index job. */
describe.skipIf(!existsSync(CHROMIUM))('Bull Board dashboard in a real browser', () => {
  let t: TestPlatform;
  let app: FastifyInstance;
  let browser: Browser;
  let base = '';
  let repo: GitFixture;
  let jobId = '';
  let adminToken = '';
  let readerToken = '';

  beforeAll(async () => {
    t = await openTestPlatform();
    await t.startWorkers();
    app = await buildApp({ logger: silentLogger, platform: t.platform });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const tokens = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
    adminToken = (await tokens.create({ name: 'admin', scopes: ['admin'], instances: ['*'] })).token;
    readerToken = (await tokens.create({ name: 'reader', scopes: ['read'], instances: ['*'] })).token;

    repo = createGitFixture();
    repo.write({ 'src/index.ts': 'export function dashboardFixture() {\n  return 42;\n}\n' });
    repo.commit('fixture');
    await t.repos.add({ source: repo.dir, name: 'dash' });
    jobId = (await t.repos.requestIndex('dash')).jobId;
    await waitForJob(t.platform.queues.queues.index, jobId);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in CI, and a closed network: no sandbox, no background traffic to hosts that cannot be reached.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await t?.cleanup();
    repo?.cleanup();
  });

  it('is closed to a browser without a session', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`${base}/admin/queues`);
    expect(res?.status()).toBe(401);
    await page.close();
  });

  it('is closed to a signed-in token without the admin scope', async () => {
    const context = await browser.newContext();
    const signIn = await context.request.post(`${base}/auth/session`, { data: { token: readerToken } });
    expect(signIn.ok()).toBe(true);
    const page = await context.newPage();
    const res = await page.goto(`${base}/admin/queues`);
    expect(res?.status()).toBe(403);
    await context.close();
  });

  it('shows every queue and the finished index job to an admin', async () => {
    const context = await browser.newContext();
    const signIn = await context.request.post(`${base}/auth/session`, { data: { token: adminToken } });
    expect(signIn.ok()).toBe(true);
    const cookies = await context.cookies(base);
    expect(cookies.find((c) => c.name === 'pk_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    const page = await context.newPage();
    const res = await page.goto(`${base}/admin/queues`);
    expect(res?.status()).toBe(200);
    for (const queue of ['index', 'embed', 'graph', 'maintenance']) {
      await page.getByRole('link', { name: new RegExp(`^${queue}`, 'i') }).first().waitFor({ state: 'visible', timeout: 15_000 });
    }

    await page.goto(`${base}/admin/queues/queue/index?status=completed`);
    await page.getByText(`#${jobId}`).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.getByText('index-repository').first().isVisible()).toBe(true);
    await page.screenshot({ path: path.join(tmpdir(), 'pk-dashboard.png') });
    await context.close();
  });
});
