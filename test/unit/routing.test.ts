import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { classifyQueues, parseStepQueue, serves, stepQueueName } from '../../src/flows/index.ts';
import { SlotRefusedError, Slots } from '../../src/workers/slots.ts';

describe('step queues per executor and tag set', () => {
  it('names one queue per sorted tag set, without ":", and reads it back', () => {
    expect(stepQueueName('local')).toBe('steps-local');
    expect(stepQueueName('local', ['gpu', 'eu', 'gpu'])).toBe('steps-local@eu+gpu');
    expect(stepQueueName('ssh', ['eu'])).not.toContain(':');
    expect(parseStepQueue('steps-local@eu+gpu')).toEqual({ executor: 'local', tags: ['eu', 'gpu'] });
    expect(parseStepQueue('steps-vm')).toEqual({ executor: 'vm', tags: [] });
    expect(parseStepQueue('gates')).toBeUndefined();
  });

  it('a worker serves a queue when it has the executor and every tag; tagsOnly drops untagged', () => {
    const gpu = { executors: ['local'], tags: ['eu', 'gpu'], tagsOnly: false };
    expect(serves(gpu, 'local', [])).toBe(true);
    expect(serves(gpu, 'local', ['gpu'])).toBe(true);
    expect(serves(gpu, 'local', ['eu', 'gpu'])).toBe(true);
    expect(serves(gpu, 'local', ['gpu', 'us'])).toBe(false);
    expect(serves(gpu, 'ssh', ['gpu'])).toBe(false);
    expect(serves({ ...gpu, tagsOnly: true }, 'local', [])).toBe(false);
    expect(serves({ ...gpu, tagsOnly: true }, 'local', ['eu'])).toBe(true);
  });

  it('says which queues nobody serves, and why', () => {
    const workers = [{ executors: ['local'], tags: ['gpu'], tagsOnly: false }];
    expect(
      classifyQueues(['steps-local', 'steps-local@gpu', 'steps-local@eu+gpu', 'steps-ssh'], workers),
    ).toEqual({
      served: ['steps-local', 'steps-local@gpu'],
      unserved: {
        'steps-local@eu+gpu': 'no live worker serves executor local with tags [eu, gpu]',
        'steps-ssh': 'no live worker serves executor ssh',
      },
    });
  });
});

describe('worker configuration', () => {
  it('reads WORKER_TAGS sorted and once, refuses malformed or too many tags, and defaults to fast recovery', () => {
    const config = loadConfig({ WORKER_TAGS: 'gpu, eu,gpu', WORKER_HEALTH_PORT: '' });
    expect(config.WORKER_TAGS).toEqual(['eu', 'gpu']);
    expect(config.WORKER_TAGS_ONLY).toBe(false);
    expect(config.WORKER_HEALTH_PORT).toBeUndefined();
    expect([config.WORKER_LOCK_MS, config.WORKER_STALLED_INTERVAL_MS]).toEqual([8000, 4000]);
    expect(() => loadConfig({ WORKER_TAGS: 'GPU' })).toThrow(
      'WORKER_TAGS: each tag must match [a-z0-9][a-z0-9_.-]{0,31}',
    );
    expect(() => loadConfig({ WORKER_TAGS: 'a,b,c,d,e,f,g,h,i' })).toThrow('WORKER_TAGS: at most 8 tags');
  });
});

describe('slots shared by every queue of a worker', () => {
  it('never lets more than the size run, hands slots over in order, refuses waiters on close', async () => {
    const slots = new Slots(2);
    await slots.acquire();
    await slots.acquire();
    const order: string[] = [];
    const refused = (err: SlotRefusedError) => `refused: ${err.reason}`;
    const third = slots.acquire().then(() => order.push('third'));
    const aborted = new AbortController();
    const fourth = slots.acquire(aborted.signal).catch(refused);
    const fifth = slots.acquire().catch(refused);
    expect(slots.busy).toBe(2);
    expect(slots.queued).toBe(3);
    aborted.abort('lock_lost');
    expect(await fourth).toBe('refused: aborted');
    slots.release();
    await third;
    expect(order).toEqual(['third']);
    expect(slots.busy).toBe(2);
    slots.close();
    expect(await fifth).toBe('refused: shutdown');
    await expect(slots.acquire()).rejects.toBeInstanceOf(SlotRefusedError);
    slots.release();
    expect(slots.busy).toBe(1);
  });
});
