// What one outage spill commit costs in SQLite: write_bytes of this process (/proc/self/io) per transaction of N
// outbox-like rows, WAL, synchronous FULL, for a page size and wal_autocheckpoint (0: no checkpoints, to see the
// WAL alone). The hold stage writes one such transaction per hold time while the cloud is down.
//   node --import tsx bench/storage/commit-cost.ts PAGE_SIZE ROWS_PER_COMMIT COMMITS [WAL_AUTOCHECKPOINT]
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const writeBytes = () => Number(/write_bytes: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))![1]);
const [pageSize, perCommit, commits] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const autocheckpoint = process.argv[5];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-commit-cost-'));
const db = new Database(path.join(dir, 't.db'));
db.pragma(`page_size = ${pageSize}`);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
if (autocheckpoint !== undefined) db.pragma(`wal_autocheckpoint = ${Number(autocheckpoint)}`);
db.exec(`CREATE TABLE o (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL,
  props TEXT, expires_at INTEGER, created_at INTEGER NOT NULL, size INTEGER NOT NULL)`);
const insert = db.prepare('INSERT INTO o (topic, payload, retain, props, expires_at, created_at, size) VALUES (?, ?, 0, NULL, NULL, ?, ?)');
const spill = db.transaction((n: number) => {
  for (let i = 0; i < n; i++) insert.run('fleet/gw/fieldgate/meter/voltage', Buffer.from('230.123'), Date.now(), 40);
});
for (let i = 0; i < 20; i++) spill(perCommit);
const before = writeBytes();
for (let i = 0; i < commits; i++) spill(perCommit);
const bytes = writeBytes() - before;
console.log(JSON.stringify({ pageSize, perCommit, autocheckpoint: autocheckpoint ?? 'default', bytesPerCommit: Math.round(bytes / commits), bytesPerMessage: Math.round(bytes / commits / perCommit) }));
db.close();
fs.rmSync(dir, { recursive: true, force: true });
