// A fixed amount of broker work, for counts that do not depend on how loaded the machine is:
// the broker's CPU time (from /proc) per message, or its instruction count when the broker runs
// under `valgrind --tool=callgrind` (the driver zeroes the counters before the workload and dumps
// them after, with callgrind_control, so start-up and shutdown are left out).
//
//   node --import tsx bench/broker/fixed-work.ts [--scenario fanin|fanout] [--messages N] [--callgrind] -- BROKER COMMAND...
//   e.g. -- node bench/results/tmp/broker__servers__fieldgate.mjs dist/broker/broker.js
//        -- valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p node ... (with --callgrind)
//        -- mosquitto -c /tmp/m.conf   (the command must print {"port":N} or be given --port)
//
// fanin: 10 publishers, one topic each, → 1 subscriber to bench/fanin/+; fanout: 1 publisher → 50
// subscribers of one topic. QoS 0, 64-byte payloads, 32 (fan-in) / 16 (fan-out) PUBLISHes per write,
// a PINGREQ after every 256 with at most 8 unanswered (as the broker suite's publishers). The run
// ends when every subscriber has all the messages (or after --timeout-ms; then it says how many).
// Prints one JSON line: messages, deliveries, wall ms, broker CPU ms, and the callgrind file when used.

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { FrameScanner } from '../lib/frame-scanner.js';
import { encodeConnect, encodePublish, encodeSubscribe, PINGREQ, PacketType } from '../lib/mqtt-wire.js';

interface Options { scenario: 'fanin' | 'fanout'; messages: number; callgrind: boolean; port: number; timeoutMs: number; command: string[] }

function parse(argv: string[]): Options {
  const options: Options = { scenario: 'fanin', messages: 200_000, callgrind: false, port: 0, timeoutMs: 600_000, command: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { options.command = argv.slice(i + 1); break; }
    if (arg === '--scenario') options.scenario = argv[++i] === 'fanout' ? 'fanout' : 'fanin';
    else if (arg === '--messages') options.messages = Number(argv[++i]);
    else if (arg === '--callgrind') options.callgrind = true;
    else if (arg === '--port') options.port = Number(argv[++i]);
    else if (arg === '--timeout-ms') options.timeoutMs = Number(argv[++i]);
    else throw new Error(`unknown option ${arg}`);
  }
  if (options.command.length === 0) throw new Error('give the broker command after --');
  return options;
}

function cpuMs(pid: number): number {
  // utime + stime of the process and its threads, in clock ticks (100 per second on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function connect(port: number, clientId: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('error', reject);
    const scanner = new FrameScanner((buffer, start) => {
      if (buffer[start]! >> 4 === PacketType.CONNACK) {
        socket.off('error', reject);
        socket.removeAllListeners('data');
        resolve(socket);
      }
    });
    socket.on('data', (chunk) => scanner.push(chunk));
    socket.write(encodeConnect(clientId));
  });
}

function subscribe(socket: net.Socket, filter: string, onPublish: () => void): Promise<void> {
  return new Promise((resolve) => {
    const scanner = new FrameScanner((buffer, start) => {
      const type = buffer[start]! >> 4;
      if (type === PacketType.PUBLISH) onPublish();
      else if (type === PacketType.SUBACK) resolve();
    });
    socket.on('data', (chunk) => scanner.push(chunk));
    socket.write(encodeSubscribe(1, filter, 0));
  });
}

/** Sends `count` QoS 0 PUBLISHes, `batch` per write, a PINGREQ after every 256 with at most 8 unanswered. */
function publish(socket: net.Socket, topic: string, count: number, batch: number): Promise<void> {
  const one = encodePublish(topic, Buffer.alloc(64, 0x61), 0).bytes;
  const chunk = Buffer.concat(Array.from({ length: batch }, () => one));
  let sent = 0;
  let sincePing = 0;
  let unanswered = 0;
  return new Promise((resolve) => {
    const scanner = new FrameScanner((buffer, start) => {
      if (buffer[start]! >> 4 !== PacketType.PINGRESP) return;
      unanswered--;
      pump();
    });
    socket.on('data', (data) => scanner.push(data));
    socket.on('drain', () => pump());
    const pump = (): void => {
      while (sent < count && unanswered < 8) {
        const n = Math.min(batch, count - sent);
        const ok = socket.write(n === batch ? chunk : chunk.subarray(0, n * one.length));
        sent += n;
        sincePing += n;
        if (sincePing >= 256 || sent === count) {
          sincePing = 0;
          unanswered++;
          socket.write(PINGREQ);
        }
        if (!ok) return;
      }
      if (sent === count && unanswered === 0) resolve();
    };
    pump();
  });
}

function callgrindControl(pid: number, action: '--zero' | '--dump'): void {
  execFileSync('callgrind_control', [action, String(pid)], { stdio: 'ignore', timeout: 600_000 });
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  const child = spawn(options.command[0]!, options.command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let port = options.port;
  if (port === 0) {
    port = await new Promise<number>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (data: Buffer) => {
        text += data.toString();
        const match = /\{"port":(\d+)\}/.exec(text);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`broker exited (${code}) before printing its port`)));
    });
  } else {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  child.stdout.resume();
  const fanin = options.scenario === 'fanin';
  const publishers = fanin ? 10 : 1;
  const subscriberCount = fanin ? 1 : 50;
  const perPublisher = Math.ceil(options.messages / publishers);
  const expectedEach = perPublisher * publishers;
  const subscribers = await Promise.all(Array.from({ length: subscriberCount }, (_, i) => connect(port, `fixed-sub-${i}`)));
  const counts = new Array<number>(subscriberCount).fill(0);
  let complete = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => { allDone = resolve; });
  await Promise.all(subscribers.map((socket, i) => subscribe(socket, fanin ? 'bench/fanin/+' : 'bench/fanout', () => {
    if (++counts[i]! === expectedEach && ++complete === subscriberCount) allDone();
  })));
  const pubs = await Promise.all(Array.from({ length: publishers }, (_, i) => connect(port, `fixed-pub-${i}`)));
  // A short warm-up so that the JIT has compiled the hot path before counting.
  await Promise.all(pubs.map((socket, i) => publish(socket, fanin ? `bench/warm/${i}` : 'bench/warm', 2000, fanin ? 32 : 16)));
  if (options.callgrind) callgrindControl(child.pid!, '--zero');
  const cpuBefore = cpuMs(child.pid!);
  const started = performance.now();
  await Promise.all(pubs.map((socket, i) => publish(socket, fanin ? `bench/fanin/${i}` : 'bench/fanout', perPublisher, fanin ? 32 : 16)));
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((resolve) => setTimeout(resolve, options.timeoutMs, true).unref())]);
  const wallMs = performance.now() - started;
  const brokerCpuMs = cpuMs(child.pid!) - cpuBefore;
  if (options.callgrind) callgrindControl(child.pid!, '--dump');
  const deliveries = counts.reduce((a, b) => a + b, 0);
  const result = {
    scenario: options.scenario,
    messages: expectedEach,
    deliveries,
    expectedDeliveries: expectedEach * subscriberCount,
    timedOut,
    wallMs: Math.round(wallMs),
    brokerCpuMs,
    brokerCpuUsPerDelivery: Number(((brokerCpuMs * 1000) / Math.max(1, deliveries)).toFixed(3)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const socket of [...subscribers, ...pubs]) socket.destroy();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
