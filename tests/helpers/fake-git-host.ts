import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A local stand-in for a Git host such as GitHub: Git's smart HTTP protocol,
 * served by git's own `git http-backend` (CGI), for private repositories that
 * answer 401 unless the request carries the host's token as HTTP Basic
 * credentials (`x-access-token:<token>`, what GitHub accepts).
 */
export interface FakeGitHost {
  /** The clone URL of a served repository. */
  url(name: string): string;
  /** Serves a repository's `.git` folder (or a bare repository) as `<name>.git`. */
  serve(name: string, gitDir: string): void;
  /** The token the host accepts from now on (the old one is refused: a revoked or rotated token). */
  setToken(token: string): void;
  /** Every request so far: its path, and whether it carried the accepted token, another or none. */
  requests: Array<{ path: string; credentials: 'accepted' | 'refused' | 'none' }>;
  close(): Promise<void>;
}

export async function startFakeGitHost(options: { token: string }): Promise<FakeGitHost> {
  const root = mkdtempSync(path.join(tmpdir(), 'pk-git-host-'));
  let token = options.token;
  const requests: FakeGitHost['requests'] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const auth = req.headers.authorization ?? '';
    const password = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':').slice(1).join(':') : null;
    const credentials = password === null ? 'none' : password === token ? 'accepted' : 'refused';
    requests.push({ path: url.pathname, credentials });
    if (credentials !== 'accepted') {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake-git-host"', 'Content-Type': 'text/plain' });
      res.end('Authentication required\n');
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        REMOTE_USER: 'x-access-token',
        REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      },
    });
    const out: Buffer[] = [];
    cgi.stdout.on('data', (d: Buffer) => out.push(d));
    cgi.stderr.resume();
    req.pipe(cgi.stdin);
    cgi.on('close', () => {
      // A CGI response: header lines, an empty line, then the body.
      const all = Buffer.concat(out);
      const end = all.indexOf('\r\n\r\n');
      const headerText = all.subarray(0, end).toString('utf8');
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of headerText.split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else if (name) headers[name] = value;
      }
      res.writeHead(status, headers);
      res.end(all.subarray(end + 4));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: (name) => `${base}/${name}.git`,
    serve(name, gitDir) {
      symlinkSync(gitDir, path.join(root, `${name}.git`));
    },
    setToken(next) {
      token = next;
    },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A TCP port on this machine that nothing listens on (taken from the system, then released). */
export async function closedPort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
