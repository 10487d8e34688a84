// No Docker engine runs here, so this checks what the image would run, outside Docker: the
// Dockerfile's assumptions against the CLI and docker/fieldgate.json, then the same ENTRYPOINT + CMD
// with that config (ports and data directory moved to a temp place) and the HEALTHCHECK command.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, freePort, GatewayProcess, ROOT, runCli, tempDir, waitFor } from './helpers.js';

interface Dockerfile {
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
  env: Map<string, string>;
  /** COPY instructions of the final stage: [source, destination]. */
  copies: Array<[string, string]>;
  workdir: string;
  volumes: string[];
  expose: number[];
  user: string;
}

/** The final stage of the Dockerfile, with line continuations joined. */
function readDockerfile(): Dockerfile {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const lines = stages[stages.length - 1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const result: Dockerfile = { entrypoint: [], cmd: [], healthcheck: [], env: new Map(), copies: [], workdir: '/', volumes: [], expose: [], user: 'root' };
  for (const line of lines) {
    const [instruction, ...restWords] = line.split(/\s+/);
    const rest = line.slice(instruction.length).trim();
    switch (instruction) {
      case 'ENTRYPOINT': result.entrypoint = JSON.parse(rest) as string[]; break;
      case 'CMD': result.cmd = JSON.parse(rest) as string[]; break;
      case 'HEALTHCHECK': result.healthcheck = JSON.parse(rest.slice(rest.indexOf('CMD') + 3).trim()) as string[]; break;
      case 'ENV': for (const m of rest.matchAll(/(\w+)=(\S+)/g)) result.env.set(m[1], m[2]); break;
      case 'COPY': if (!restWords[0].startsWith('--from')) result.copies.push([restWords[0], restWords[restWords.length - 1]]); break;
      case 'WORKDIR': result.workdir = rest; break;
      case 'VOLUME': result.volumes.push(rest); break;
      case 'EXPOSE': result.expose.push(...restWords.map(Number)); break;
      case 'USER': result.user = rest; break;
    }
  }
  return result;
}

const dockerfile = readDockerfile();
const imageConfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'docker/fieldgate.json'), 'utf8')) as {
  broker: { host: string; port: number; dataDir: string };
  auth: { passwordFile: string };
  metrics: { host: string; port: number };
};

describe('the Dockerfile agrees with the CLI and docker/fieldgate.json', () => {
  it('CMD runs the config the image ships', () => {
    const configIndex = dockerfile.cmd.indexOf('--config');
    expect(dockerfile.cmd[0]).toBe('run');
    expect(configIndex).toBeGreaterThan(0);
    const configPath = dockerfile.cmd[configIndex + 1];
    expect(dockerfile.copies).toContainEqual(['docker/fieldgate.json', configPath]);
  });

  it('ENTRYPOINT is node on bin/fieldgate.js with what it needs copied next to it', () => {
    expect(dockerfile.entrypoint[0]).toBe('node');
    expect(dockerfile.entrypoint.at(-1)).toBe('bin/fieldgate.js');
    expect(dockerfile.workdir).toBe('/app');
    // bin/fieldgate.js imports ../dist/bundle/cli.js or ../dist/cli.js; version.ts reads the package.json
    // above it; profiles come from devices/.
    const launcher = fs.readFileSync(path.join(ROOT, 'bin/fieldgate.js'), 'utf8');
    expect(launcher).toContain("'../dist/bundle/cli.js'");
    expect(launcher).toContain("'../dist/cli.js'");
    const copied = dockerfile.copies.map(([, to]) => to);
    for (const needed of ['./bin', './devices']) expect(copied).toContain(needed);
    const fromBuild = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(fromBuild).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(fromBuild).toMatch(/COPY --from=build \/app\/package\.json/);
    expect(dockerfile.user).toBe('fieldgate');
  });

  it('the config listens where -p reaches, keeps data on the volume and serves the health check the image polls', () => {
    expect(imageConfig.broker.host).toBe('0.0.0.0');
    expect(dockerfile.volumes).toContain(imageConfig.broker.dataDir);
    expect(dockerfile.expose).toContain(imageConfig.broker.port);
    const health = new URL(dockerfile.env.get('FIELDGATE_HEALTHCHECK_URL')!);
    expect(health.pathname).toBe('/healthz');
    expect(Number(health.port)).toBe(imageConfig.metrics.port);
    expect(['0.0.0.0', '127.0.0.1']).toContain(imageConfig.metrics.host);
    expect(dockerfile.healthcheck.join(' ')).toContain('FIELDGATE_HEALTHCHECK_URL');
  });
});

describe('docker exec and docker compose', () => {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

  it('fieldgate is on the image\'s PATH and FIELDGATE_CONFIG names the config CMD runs', async () => {
    expect(text).toMatch(/^RUN ln -s \/app\/bin\/fieldgate\.js \/usr\/local\/bin\/fieldgate$/m);
    expect(dockerfile.env.get('FIELDGATE_CONFIG')).toBe(dockerfile.cmd[dockerfile.cmd.indexOf('--config') + 1]);
    // The same outside Docker: a link to bin/fieldgate.js in another directory, the config named by the variable.
    ensureBuilt();
    const dir = tempDir('fieldgate-exec-');
    try {
      fs.symlinkSync(path.join(ROOT, 'bin/fieldgate.js'), path.join(dir, 'fieldgate'));
      fs.writeFileSync(path.join(dir, 'fieldgate.json'), JSON.stringify({ ...imageConfig, auth: {} }));
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => execFile(path.join(dir, 'fieldgate'), ['check'], {
        cwd: '/', env: { ...process.env, FIELDGATE_CONFIG: path.join(dir, 'fieldgate.json') }, timeout: 20_000,
      }, (error, out) => (error ? reject(error) : resolve({ stdout: out }))));
      expect(stdout).toContain(`${path.join(dir, 'fieldgate.json')}: OK`);
      expect(stdout).toContain('data in /data');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const python = '/usr/bin/python3';
  const haveYaml = fs.existsSync(python) && (() => { try { execFileSync(python, ['-c', 'import yaml']); return true; } catch { return false; } })();
  it.skipIf(!haveYaml && process.env.CI !== 'true')('compose.yaml runs the image as README "Docker" does', () => {
    const compose = JSON.parse(execFileSync(python, ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path.join(ROOT, 'compose.yaml')], { encoding: 'utf8' })) as {
      services: Record<string, { build: string; image: string; init: boolean; restart: string; ports: string[]; volumes: string[]; devices?: string[] }>;
      volumes: Record<string, unknown>;
    };
    const service = compose.services.fieldgate!;
    expect(fs.existsSync(path.join(ROOT, service.build, 'Dockerfile'))).toBe(true);
    expect(service.init).toBe(true);
    expect(service.ports).toEqual(expect.arrayContaining([`${imageConfig.broker.port}:${imageConfig.broker.port}`, `${imageConfig.metrics.port}:${imageConfig.metrics.port}`]));
    for (const p of service.ports) expect(dockerfile.expose).toContain(Number(p.split(':')[1]));
    const mounts = new Map(service.volumes.map((v) => [v.split(':')[1], v.split(':')[0]]));
    expect(dockerfile.volumes).toContain('/data');
    expect(mounts.get(imageConfig.broker.dataDir)).toBe('fieldgate-data');
    expect(compose.volumes).toHaveProperty('fieldgate-data');
    expect(mounts.get(path.dirname(dockerfile.env.get('FIELDGATE_CONFIG')!))).toBe('./config');
    expect(service.volumes).toContain('./config:/etc/fieldgate:ro');
    // The adapter is commented out: `docker compose up` must work without one.
    expect(service.devices).toBeUndefined();
    expect(fs.readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')).toMatch(/^ {4}# {3}- \/dev\/serial\/by-id\/\S+:\/dev\/ttyUSB0$/m);
    // The mapping that path goes with exists and names it.
    const meter = JSON.parse(fs.readFileSync(path.join(ROOT, 'docker/devices/meter.json'), 'utf8')) as { buses: Array<{ path: string }> };
    expect(meter.buses[0]!.path).toBe('/dev/ttyUSB0');
  });

  it('the README\'s quick start runs without a serial adapter; the adapter is a separate example', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Docker\n'), readme.indexOf('\n## ', readme.indexOf('\n## Docker\n') + 5));
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks[0]).not.toContain('--device');
    expect(blocks[0]).toContain('docker exec fieldgate fieldgate check');
    expect(blocks[1]).toMatch(/--device \S+:\/dev\/ttyUSB0/);
    expect(blocks[1]).toContain('docker/devices/meter.json');
  });
});

describe('what the image runs, outside Docker', () => {
  let dir: string;
  let etc: string;
  let mqttPort: number;
  let metricsPort: number;
  let gateway: GatewayProcess | undefined;

  /** docker/fieldgate.json as the image has it, with free ports and a temp data directory. */
  function writeConfig(): string {
    const config = structuredClone(imageConfig);
    config.broker.port = mqttPort;
    config.broker.dataDir = path.join(dir, 'data');
    config.metrics.port = metricsPort;
    const file = path.join(etc, 'fieldgate.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  }
  const entrypointWith = (configFile: string) => {
    const cmd = dockerfile.cmd.map((arg, i) => (dockerfile.cmd[i - 1] === '--config' ? configFile : arg));
    return [...dockerfile.entrypoint.slice(1), ...cmd];
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-image-');
    etc = path.join(dir, 'etc-fieldgate');
    fs.mkdirSync(etc);
    mqttPort = await freePort();
    metricsPort = await freePort();
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('without the password file it stops at once and says which file is missing', async () => {
    const failed = new GatewayProcess([], ROOT, entrypointWith(writeConfig()));
    const { code } = await failed.exited;
    expect(code).toBe(78);
    expect(failed.rawOutput.join('\n')).toMatch(/auth\.passwordFile: .*passwd.*ENOENT/);
  });

  it('with one it serves MQTT to users, refuses anonymous clients, and passes the HEALTHCHECK', async () => {
    expect((await runCli(['passwd', '-b', path.join(etc, 'passwd'), 'alice', 'alice-pw'])).code).toBe(0);
    gateway = new GatewayProcess([], ROOT, entrypointWith(writeConfig()));
    await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the gateway to start (listeners open last)');
    expect(gateway.logs.map((l) => l.msg)).toContain(`MQTT broker listening on mqtt://0.0.0.0:${mqttPort}`);
    // Bound to 0.0.0.0, reached on 127.0.0.1, with credentials since anonymous clients are refused there.
    expect(gateway.logs.map((l) => l.msg)).toContain(`watch the readings: mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -u USER -P PASSWORD -t 'fieldgate/demo-meter/#' -v`);

    const [command, ...args] = dockerfile.healthcheck;
    expect(command).toBe('node');
    const healthcheck = () => new Promise<number>((resolve) => {
      const env = { ...process.env, FIELDGATE_HEALTHCHECK_URL: `http://127.0.0.1:${metricsPort}/healthz` };
      execFile(process.execPath, args, { env, timeout: 10_000 }, (error) => resolve(error ? (error as { code?: number }).code ?? 1 : 0));
    });
    expect(await healthcheck()).toBe(0);

    const refused = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, reconnectPeriod: 0 }).then(() => 'accepted', (e: Error) => e.message);
    expect(refused).toMatch(/Not authorized/);
    const alice = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, username: 'alice', password: 'alice-pw', reconnectPeriod: 0 });
    const seen: string[] = [];
    alice.on('message', (topic) => seen.push(topic));
    await alice.subscribeAsync('fieldgate/#');
    await waitFor(() => seen.includes('fieldgate/demo-meter/power'), 'demo readings');
    await alice.endAsync();

    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(path.join(dir, 'data', 'fieldgate.db'))).toBe(true);
    // Stopped: the health check now fails, as Docker would see it.
    expect(await healthcheck()).not.toBe(0);
  });
});
