/** Graph algorithms over `needs`: topological order, cycles, ancestors. */

/** `needs` of each node: node → the nodes it depends on. */
export type NeedsGraph = ReadonlyMap<string, readonly string[]>;

/** Kahn's order (dependencies first, ties in definition order), or `undefined` when cyclic. */
export function topologicalOrder(graph: NeedsGraph): string[] | undefined {
  const order = acyclicPart(graph);
  return order.length === graph.size ? order : undefined;
}

/** Kahn's order of every node that neither is on a cycle nor needs one (all nodes when acyclic). */
export function acyclicPart(graph: NeedsGraph): string[] {
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const [id, needs] of graph) {
    remaining.set(id, needs.length);
    for (const need of needs) {
      const list = dependents.get(need) ?? [];
      list.push(id);
      dependents.set(need, list);
    }
  }
  const order: string[] = [];
  const ready = [...graph.keys()].filter((id) => remaining.get(id) === 0);
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!;
    order.push(id);
    for (const dependent of dependents.get(id) ?? []) {
      const left = remaining.get(dependent)! - 1;
      remaining.set(dependent, left);
      if (left === 0) ready.push(dependent);
    }
  }
  return order;
}

/**
 * One cycle per strongly connected component that has one (Tarjan), each as a path that starts
 * and ends on the same node, following `needs`: `[a, b, c, a]` means a needs b needs c needs a.
 */
export function findCycles(graph: NeedsGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];

  // Iterative Tarjan: definitions may be deep chains, recursion would blow the stack.
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; next: number }> = [{ node: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const frame = work[work.length - 1]!;
      const needs = graph.get(frame.node) ?? [];
      if (frame.next < needs.length) {
        const next = needs[frame.next++]!;
        if (!graph.has(next)) continue;
        if (!index.has(next)) {
          index.set(next, counter);
          low.set(next, counter++);
          stack.push(next);
          onStack.add(next);
          work.push({ node: next, next: 0 });
        } else if (onStack.has(next)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(next)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component = new Set<string>();
      for (;;) {
        const member = stack.pop()!;
        onStack.delete(member);
        component.add(member);
        if (member === frame.node) break;
      }
      const selfLoop = (graph.get(frame.node) ?? []).includes(frame.node);
      if (component.size > 1 || selfLoop) cycles.push(cycleWithin(graph, component, frame.node));
    }
  }
  return cycles;
}

/** A shortest cycle through `start` inside one strongly connected component (BFS). */
function cycleWithin(graph: NeedsGraph, component: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const between: string[] = [];
        for (let at = node; at !== start; at = previous.get(at)!) between.push(at);
        return [start, ...between.reverse(), start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/** Every node reachable through `needs` from `id` (its ancestors), `id` excluded. */
export function ancestors(graph: NeedsGraph, id: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...(graph.get(id) ?? [])];
  while (todo.length) {
    const next = todo.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    todo.push(...(graph.get(next) ?? []));
  }
  return seen;
}

/**
 * "Is `ref` an ancestor of `id`?" for the nodes of `order` (see `acyclicPart`; any other `id`
 * answers true: on or after a cycle, "before" has no meaning). One bitset of ancestors per node,
 * built on the first question in O(edges × nodes / 32) time and nodes² / 8 bytes (12.5 MB at
 * 10,000 steps), where a walk per question would be quadratic.
 */
export function ancestry(graph: NeedsGraph, order: readonly string[]): (id: string, ref: string) => boolean {
  const index = new Map(order.map((id, i) => [id, i]));
  const words = Math.ceil(order.length / 32);
  let bits: Map<string, Uint32Array> | undefined;
  const build = () => {
    const built = new Map<string, Uint32Array>();
    for (const node of order) {
      const own = new Uint32Array(words);
      for (const need of graph.get(node) ?? []) {
        const theirs = built.get(need)!;
        for (let w = 0; w < words; w++) own[w]! |= theirs[w]!;
        const k = index.get(need)!;
        own[k >>> 5]! |= 1 << (k & 31);
      }
      built.set(node, own);
    }
    return built;
  };
  return (id, ref) => {
    bits ??= build();
    const own = bits.get(id);
    if (!own) return true;
    const k = index.get(ref);
    if (k === undefined) return false;
    return (own[k >>> 5]! & (1 << (k & 31))) !== 0;
  };
}
