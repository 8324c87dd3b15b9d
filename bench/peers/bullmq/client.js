'use strict';
// BullMQ's client for W1/W2/W3 (bench/peers/driver.py starts it; prints one JSON line).
//   node client.js run N SLEEP_MS IDS_OUT   N executions; SUBMIT_WINDOW flow.add() calls in flight (1)
//   node client.js lookups IDS_FILE COUNT   COUNT state look-ups of random executions
//
// An execution is one FlowProducer.add() of p3 <- p2 <- p1 on queue 'wf' (a
// parent runs once its child is done, so p1 runs first); it is complete when
// its root, p3, is. Clock points, the same as synload's and Celery's client: the
// wall time runs from the first submit to the last completion this client saw;
// an execution's latency runs from its submit to the root's `finishedOn` as the
// worker recorded it (same host clock), and the latency as seen here is kept too.
// The roots' ids are chosen before the first submit and QueueEvents reads the
// events stream from its last entry before it, so completions are seen as they
// happen; a completion it missed all the same is counted (missed_by_events).
const crypto = require('node:crypto');
const fs = require('node:fs');
const { FlowProducer, Job, Queue, QueueEvents } = require('bullmq');
const { Redis } = require('ioredis');

const connection = { host: '127.0.0.1', port: Number(process.env.PEER_REDIS_PORT || 6390), maxRetriesPerRequest: null };
const window = Number(process.env.SUBMIT_WINDOW || 1);
const epochMs = () => performance.timeOrigin + performance.now();

// Linear interpolation between the closest ranks, as synload and client.py do.
function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return null;
  const rank = ((s.length - 1) * p) / 100;
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

// QueueEvents reads from the stream's end ('$') only once its first XREAD is out,
// a round trip after it says it is ready: a completion in between would be missed.
// Starting it from the stream's current last entry leaves no such gap.
async function lastEventId(queue) {
  const redis = new Redis(connection);
  const [last] = await redis.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
  redis.disconnect();
  return last ? last[0] : '0-0';
}

function flowOf(i, rootId, sleepMs) {
  const phase = (name, extra) => ({ name, queueName: 'wf', data: { sleepMs, ...extra } });
  return {
    ...phase('p3'), opts: { jobId: rootId },
    children: [{ ...phase('p2'), children: [phase('p1', { input: `exec-${i}` })] }],
  };
}

async function run(n, sleepMs, idsOut) {
  // 2,000 executions write ~30,000 events; BullMQ trims its events stream to
  // ~10,000 by default, which a lagging listener could miss, so keep more.
  const queue = new Queue('wf', { connection, streams: { events: { maxLen: 200000 } } });
  await queue.waitUntilReady();
  const events = new QueueEvents('wf', { connection, lastEventId: await lastEventId(queue) });
  const flows = new FlowProducer({ connection });
  await Promise.all([events.waitUntilReady(), flows.waitUntilReady()]);

  const roots = Array.from({ length: n }, () => crypto.randomUUID());
  const indexOf = new Map(roots.map((id, i) => [id, i]));
  const submittedAt = new Array(n).fill(0);
  const seenAt = new Array(n).fill(0);
  let seen = 0;
  let allSeen;
  const everyOne = new Promise((resolve) => { allSeen = resolve; });
  const mark = (i) => { if (!seenAt[i]) { seenAt[i] = epochMs(); if (++seen === n) allSeen(); } };
  events.on('completed', ({ jobId }) => { const i = indexOf.get(jobId); if (i !== undefined) mark(i); });

  const start = epochMs();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      submittedAt[i] = epochMs();
      await flows.add(flowOf(i, roots[i], sleepMs));
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  const allSubmitted = epochMs();

  // Should events stop coming for 15 s, ask for the states instead (counted, so
  // a run that needed it shows).
  let missedByEvents = 0;
  while (seen < n) {
    const before = seen;
    const quiet = await Promise.race([everyOne.then(() => false), new Promise((r) => setTimeout(() => r(true), 15000))]);
    if (!quiet || seen !== before) continue;
    for (let i = 0; i < n; i++) {
      if (!seenAt[i] && (await queue.getJobState(roots[i])) === 'completed') { missedByEvents++; mark(i); }
    }
  }
  const lastSeen = Math.max(...seenAt);

  // Not timed: each root's return value and the worker's finish time.
  let wrong = 0;
  const latSeen = [];
  const latWorker = [];
  for (let from = 0; from < n; from += 200) {
    const jobs = await Promise.all(roots.slice(from, from + 200).map((id) => Job.fromId(queue, id)));
    jobs.forEach((job, k) => {
      const i = from + k;
      if (!job || job.returnvalue !== `exec-${i}|p1|p2|p3`) { wrong++; return; }
      latSeen.push(seenAt[i] - submittedAt[i]);
      latWorker.push(job.finishedOn - submittedAt[i]);
    });
  }
  fs.writeFileSync(idsOut, JSON.stringify(roots));
  const wall = (lastSeen - start) / 1000;
  console.log(JSON.stringify({
    n, sleep_s: sleepMs / 1000, submit_window: window,
    submit_s: (allSubmitted - start) / 1000, wall_s: wall,
    exec_per_s: n / wall, phases_per_s: (3 * n) / wall,
    lat_client_p50_ms: percentile(latSeen, 50), lat_client_p99_ms: percentile(latSeen, 99),
    lat_worker_p50_ms: percentile(latWorker, 50), lat_worker_p99_ms: percentile(latWorker, 99),
    bad_results: wrong, missing: n - seen, missed_by_events: missedByEvents,
  }));
  await Promise.all([flows.close(), events.close(), queue.close()]);
}

async function lookups(idsFile, count) {
  const ids = JSON.parse(fs.readFileSync(idsFile, 'utf8'));
  const queue = new Queue('wf', { connection });
  await queue.waitUntilReady();
  // A fixed xorshift32 sequence: every run looks up the same executions.
  let x = 20;
  const pick = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return ids[(x >>> 0) % ids.length]; };
  const chosen = Array.from({ length: count }, pick);
  await queue.getJobState(chosen[0]); // the connection is made before the clock starts
  const states = {};
  const start = performance.now();
  for (const id of chosen) {
    const state = await queue.getJobState(id);
    states[state] = (states[state] || 0) + 1;
  }
  const secs = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ count, secs, lookups_per_s: count / secs, states }));
  await queue.close();
}

const [mode, ...args] = process.argv.slice(2);
const work = mode === 'run' && args.length === 3 ? run(Number(args[0]), Number(args[1]), args[2])
  : mode === 'lookups' && args.length === 2 ? lookups(args[0], Number(args[1]))
    : Promise.reject(new Error('usage: client.js run N SLEEP_MS IDS_OUT | lookups IDS_FILE COUNT'));
work.then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
