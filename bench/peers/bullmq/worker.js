'use strict';
// BullMQ's worker for W1/W2 (bench/peers/driver.py starts it): SLOTS phases at once
// from queue 'wf'. A phase's input is the execution's argument for the first phase
// (the innermost child of the flow) and otherwise its one child's return value,
// read with getChildrenValues() as BullMQ's flows are meant to be used; W2's
// phases sleep as long as the job's sleepMs says, standing in for an agent's wait.
const { Worker } = require('bullmq');

const connection = { host: '127.0.0.1', port: Number(process.env.PEER_REDIS_PORT || 6390), maxRetriesPerRequest: null };
const slots = Number(process.env.SLOTS || 16);

async function phase(job) {
  let input = job.data.input;
  if (input === undefined) {
    const [childOutput] = Object.values(await job.getChildrenValues());
    input = childOutput;
  }
  if (job.data.sleepMs) await new Promise((wake) => setTimeout(wake, job.data.sleepMs));
  return `${input}|${job.name}`;
}

const worker = new Worker('wf', phase, { connection, concurrency: slots });
worker.on('error', (e) => console.error('worker:', e));
worker.on('failed', (job, e) => console.error('phase failed:', job && job.id, e));

// SIGTERM from the driver: let the running phases finish, then leave.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => worker.close().finally(() => process.exit(0)));
}
