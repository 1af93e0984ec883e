/**
 * BullMQ 6.7's `FlowProducer.add` first checks the flow with a recursive walk (the private
 * `validateFlowJobs`): a chain of about 6,000 steps or more overflows the stack there and the
 * submission answered 500. The rest of `add` is safe for any depth (each level of its `addNode`
 * starts after an `await`, and the jobs go out in one flat MULTI). This puts the same check,
 * iterative, on one producer, so the whole run is still added by one `add`: one MULTI.
 */
import type { FlowJob, FlowProducer } from 'bullmq';

/** Gives `flows` an iterative flow check; returns it. */
export function allowDeepFlows(flows: FlowProducer): FlowProducer {
  // The method is private in BullMQ's types: replaced on this instance only, same contract.
  (flows as unknown as { validateFlowJobs: (nodes: FlowJob[]) => void }).validateFlowJobs = checkFlowJobs;
  return flows;
}

/** BullMQ's rule, walked with a stack: a node with children may not ask for deduplication. */
function checkFlowJobs(nodes: FlowJob[]): void {
  const todo = [...nodes];
  while (todo.length) {
    const node = todo.pop()!;
    if (!node.children?.length) continue;
    if (node.opts && 'deduplication' in node.opts && node.opts.deduplication) {
      throw new Error('Deduplication options cannot be used on flow nodes with children');
    }
    todo.push(...node.children);
  }
}
