/**
 * Lays out a run's DAG left to right, once per run (again only when a fan-out node is expanded
 * or collapsed). Up to `DAGRE_MAX` steps it is dagre's layout; past it, dagre's crossing
 * minimisation and positioning grow far faster than the graph (on this project's busy 2-core
 * build machine: about 1 s for 250 steps in random layers, 2 to 6 s for 500, over a minute for
 * 1,000), so larger runs get a
 * linear-time layered layout: longest-path ranks, one barycentre pass to order each rank.
 */
import dagre from './dagre.js';

/** The largest graph dagre lays out. */
export const DAGRE_MAX = 200;
const RANK_SEP = 48;
const NODE_SEP = 14;
const MARGIN = 16;

/**
 * `steps`: `[{id, needs, width, height}]` in definition order. Returns `{nodes: Map(id → {x, y,
 * width, height}), edges: [{from, to, points: [{x, y}…]}], width, height}` with x, y the
 * top-left corner of each node.
 */
export function layoutGraph(steps) {
  return steps.length <= DAGRE_MAX ? withDagre(steps) : layered(steps);
}

function withDagre(steps) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', ranksep: RANK_SEP, nodesep: NODE_SEP, marginx: MARGIN, marginy: MARGIN });
  g.setDefaultEdgeLabel(() => ({}));
  for (const step of steps) g.setNode(step.id, { width: step.width, height: step.height });
  for (const step of steps) for (const need of step.needs) if (g.hasNode(need)) g.setEdge(need, step.id);
  dagre.layout(g);
  const nodes = new Map();
  for (const step of steps) {
    const n = g.node(step.id);
    nodes.set(step.id, { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height });
  }
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points ?? [] }));
  const { width, height } = g.graph();
  return { nodes, edges, width, height };
}

function layered(steps) {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const rank = new Map();
  // Kahn's order: every step after its needs; definitions are acyclic (the API refuses cycles).
  const indegree = new Map(steps.map((step) => [step.id, step.needs.filter((n) => byId.has(n)).length]));
  const dependents = new Map(steps.map((step) => [step.id, []]));
  for (const step of steps) for (const need of step.needs) dependents.get(need)?.push(step.id);
  const queue = steps.filter((step) => indegree.get(step.id) === 0).map((step) => step.id);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    const r = rank.get(id) ?? 0;
    rank.set(id, r);
    for (const next of dependents.get(id)) {
      rank.set(next, Math.max(rank.get(next) ?? 0, r + 1));
      indegree.set(next, indegree.get(next) - 1);
      if (indegree.get(next) === 0) queue.push(next);
    }
  }
  const ranks = [];
  for (const id of queue) {
    const r = rank.get(id);
    if (!ranks[r]) ranks[r] = [];
    ranks[r].push(id);
  }
  // Order each rank by the mean position of its needs in the rank before (barycentre).
  const position = new Map();
  for (const ids of ranks) {
    const keyed = ids.map((id, index) => {
      const placed = byId.get(id).needs.filter((n) => position.has(n));
      const mean = placed.length
        ? placed.reduce((sum, n) => sum + position.get(n), 0) / placed.length
        : index;
      return { id, mean, index };
    });
    keyed.sort((a, b) => a.mean - b.mean || a.index - b.index);
    keyed.forEach((k, i) => {
      ids[i] = k.id;
      position.set(k.id, i);
    });
  }
  const columnWidth = ranks.map((ids) => Math.max(...ids.map((id) => byId.get(id).width)));
  const columnHeight = ranks.map(
    (ids) => ids.reduce((sum, id) => sum + byId.get(id).height, 0) + NODE_SEP * (ids.length - 1),
  );
  const height = Math.max(...columnHeight) + 2 * MARGIN;
  const nodes = new Map();
  let x = MARGIN;
  ranks.forEach((ids, r) => {
    let y = MARGIN + (height - 2 * MARGIN - columnHeight[r]) / 2;
    for (const id of ids) {
      const { width: w, height: hgt } = byId.get(id);
      nodes.set(id, { x, y, width: w, height: hgt });
      y += hgt + NODE_SEP;
    }
    x += columnWidth[r] + RANK_SEP;
  });
  const edges = [];
  for (const step of steps) {
    const to = nodes.get(step.id);
    for (const need of step.needs) {
      const from = nodes.get(need);
      if (!from) continue;
      edges.push({
        from: need,
        to: step.id,
        points: [
          { x: from.x + from.width, y: from.y + from.height / 2 },
          { x: to.x, y: to.y + to.height / 2 },
        ],
      });
    }
  }
  return { nodes, edges, width: x - RANK_SEP + MARGIN, height };
}
