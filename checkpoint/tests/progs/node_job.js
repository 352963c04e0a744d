// A Node job: a timer-paced hash, a worker thread answering messages, and a libuv thread-pool
// task (pbkdf2). Prints STEP lines while it runs and one RESULT line, the same on every run.
const crypto = require('crypto');
const N = 300;
let h = crypto.createHash('sha256');
let i = 0;
const out = {};
function step() {
  h.update(String(i));
  if (i % 50 === 0) console.log(`STEP ${i}`);
  i++;
  if (i < N) setTimeout(step, 3); else { out.timers = h.digest('hex').slice(0, 16); done(); }
}
setTimeout(step, 3);
let pending = 3;
function done() { if (--pending === 0) { console.log('RESULT ' + JSON.stringify(out, Object.keys(out).sort())); process.exit(0); } }
const { Worker } = require('worker_threads');
const w = new Worker(`const { parentPort } = require('worker_threads'); let s = 0; parentPort.on('message', (m) => { s += m; parentPort.postMessage(s); });`, { eval: true });
let acc = 0, k = 0;
w.on('message', (s) => { acc = s; if (++k < N) setTimeout(() => w.postMessage(k), 2); else { out.worker = acc; w.terminate(); done(); } });
w.postMessage(0);
crypto.pbkdf2('secret', 'salt', 100000, 32, 'sha256', (err, key) => { out.pool = key.toString('hex').slice(0, 16); done(); });
