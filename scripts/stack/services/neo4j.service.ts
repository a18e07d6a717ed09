import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnDetached, which } from '../process.ts';
import { PrerequisiteError, type LocalService, type StackContext } from '../service.ts';

const NEO4J_USER = 'neo4j';

function launcherDir(ctx: StackContext): string {
  return path.join(ctx.projectRoot, 'scripts', 'stack', 'neo4j');
}

function hashOf(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);
}

function javaMajor(): number | undefined {
  const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(out.stderr ?? '');
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major;
}

/**
 * Neo4j's jars come from Maven Central through a tiny pom; the resolved
 * classpath is cached per pom content so only the first start pays for Maven.
 */
function classpath(ctx: StackContext): string {
  const pom = path.join(launcherDir(ctx), 'pom.xml');
  const cacheDir = path.join(ctx.dataDir, 'neo4j');
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `classpath-${hashOf(pom)}.txt`);
  if (!existsSync(file)) {
    ctx.log('neo4j: resolving the Neo4j 5.26 jars with Maven (first run only)');
    const mvn = spawnSync('mvn', ['-B', '-q', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${file}`], {
      encoding: 'utf8',
    });
    if (mvn.status !== 0 || !existsSync(file)) {
      throw new Error(`Maven could not resolve the Neo4j jars: ${(mvn.stdout + mvn.stderr).trim().split('\n').slice(-5).join(' | ')}`);
    }
  }
  return readFileSync(file, 'utf8').trim();
}

/** Compiles the launcher once per source version, so starts skip the source launcher's compile step. */
function compiledLauncher(ctx: StackContext, cp: string): string {
  const source = path.join(launcherDir(ctx), 'Neo4jLauncher.java');
  const out = path.join(ctx.dataDir, 'neo4j', `launcher-${hashOf(source)}`);
  if (!existsSync(path.join(out, 'Neo4jLauncher.class'))) {
    const javac = spawnSync('javac', ['-d', out, '-cp', cp, source], { encoding: 'utf8' });
    if (javac.status !== 0) throw new Error(`could not compile the Neo4j launcher: ${javac.stderr.trim()}`);
  }
  return out;
}

export const neo4jService: LocalService = {
  name: 'neo4j',
  envVar: 'NEO4J_URI',
  stopSignal: 'SIGTERM',
  startTimeoutMs: 120_000,

  async prepare(ctx) {
    const missing: string[] = [];
    if (!which('java') || !which('javac')) missing.push('a Java 17+ JDK (Debian: `apt-get install openjdk-17-jdk-headless`)');
    else if ((javaMajor() ?? 0) < 17) missing.push(`Java 17 or newer (found Java ${javaMajor() ?? 'unknown'})`);
    if (!which('mvn')) missing.push('Maven (Debian: `apt-get install maven`)');
    if (missing.length > 0) {
      throw new PrerequisiteError(`Neo4j needs ${missing.join(' and ')}; install it or set NEO4J_URI and NEO4J_PASSWORD to an existing Neo4j 5`);
    }
    compiledLauncher(ctx, classpath(ctx));
  },

  async start(ctx, port) {
    const cp = classpath(ctx);
    const classes = compiledLauncher(ctx, cp);
    const home = path.join(ctx.dataDir, 'neo4j', 'home');
    mkdirSync(home, { recursive: true });
    const passwordFile = path.join(ctx.dataDir, 'neo4j', 'password');
    if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
    const password = readFileSync(passwordFile, 'utf8').trim();

    const pid = spawnDetached(
      'java',
      [
        // Serial GC, a dev and test server on a 2-core machine, not a production cluster. A fixed 256 MB young
        // generation: with the default one (a third of a 128 MB start heap) each graph batch's transaction state
        // outlived several young collections and filled the old generation, and writing and resolving a
        // 3,000-file graph three times cost 5.8 s of collections (1.7 s of them full) instead of 2.4 s, none full.
        '-Xms512m',
        '-Xmx1g',
        '-Xmn256m',
        '-XX:+UseSerialGC',
        // C1 only: on a fresh JVM, C2 compiling Neo4j's and Cypher's hot paths took 34 of Neo4j's 77 CPU seconds
        // during a first index of 6,000 files (bench/index.bench.ts) on 2 cores; C1's code is slower at its
        // peak, but the whole index finished as fast as on a warm C2 JVM and a fresh one is 25% slower.
        '-XX:TieredStopAtLevel=1',
        '-cp',
        `${classes}${path.delimiter}${cp}`,
        'Neo4jLauncher',
        '--home', home,
        '--bolt-port', String(port),
        '--password-file', passwordFile,
      ],
      path.join(ctx.dataDir, 'logs', 'neo4j.log'),
    );
    return { pid, url: `bolt://127.0.0.1:${port}`, user: NEO4J_USER, password };
  },
};
