import type { FlowJob } from 'bullmq';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ValidationError } from '../../src/errors.ts';
import {
  ancestors,
  compileRun,
  type GateJobData,
  QUEUES,
  type StepJobData,
  validateDefinition,
} from '../../src/flows/index.ts';
import { type Dag, dagArbitrary } from '../support/random-dag.ts';

const definition = (dag: Dag) => ({
  name: 'prop',
  steps: Object.fromEntries(Object.entries(dag).map(([id, needs]) => [id, { needs, run: 'true' }])),
});

function walk(
  node: FlowJob,
  parent: FlowJob | undefined,
  visit: (node: FlowJob, parent: FlowJob | undefined) => void,
) {
  visit(node, parent);
  for (const child of node.children ?? []) walk(child, node, visit);
}

describe('compiler on random DAGs', () => {
  it('accepts every acyclic graph up to 200 steps and compiles it to one tree with every edge kept', () => {
    fc.assert(
      fc.property(dagArbitrary(200), (dag) => {
        const workflow = validateDefinition(definition(dag));
        const flow = compileRun({
          id: 'run_p',
          workflow: { name: 'prop', version: null },
          definition: workflow,
          inputs: {},
          trigger: {},
          createdAt: new Date().toISOString(),
        });
        const stepJobs = new Map<string, { node: FlowJob; parent: FlowJob | undefined }>();
        const gates: Array<{ data: GateJobData; parent: FlowJob | undefined }> = [];
        const ids = new Set<string>();
        walk(flow, undefined, (node, parent) => {
          const jobId = node.opts!.jobId!;
          expect(ids.has(jobId)).toBe(false); // a job id appears once: a tree, no second parents
          ids.add(jobId);
          if (node.queueName === QUEUES.gate) gates.push({ data: node.data as GateJobData, parent });
          else if (node.queueName !== QUEUES.run)
            stepJobs.set((node.data as StepJobData).stepId, { node, parent });
        });
        expect(new Set(stepJobs.keys())).toEqual(new Set(Object.keys(dag)));
        // Every needs edge S → D is either D being S's BullMQ parent or a gate under D.
        let edges = 0;
        for (const [d, needs] of Object.entries(dag)) {
          for (const s of needs) {
            edges++;
            const parentStep = (stepJobs.get(s)!.parent?.data as StepJobData | undefined)?.stepId;
            const gate = gates.find((g) => g.data.stepId === s && g.data.dependent === d);
            expect(parentStep === d ? !gate : !!gate).toBe(true);
            if (gate) {
              expect((gate.parent!.data as StepJobData).stepId).toBe(d);
              expect((stepJobs.get(s)!.node.data as StepJobData).gates).toContain(`run_p.gate.${s}.${d}`);
            }
          }
        }
        const sinks = Object.keys(dag).filter(
          (id) => !Object.values(dag).some((needs) => needs.includes(id)),
        );
        expect(gates.length).toBe(edges - (Object.keys(dag).length - sinks.length));
        expect(new Set((flow.children ?? []).map((c) => (c.data as StepJobData).stepId))).toEqual(
          new Set(sinks),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('rejects every graph with a cycle, naming a real cycle', () => {
    fc.assert(
      fc.property(dagArbitrary(200), fc.nat(), fc.nat(), (dag, pickV, pickU) => {
        const graph = new Map(Object.entries(dag));
        const candidates = Object.keys(dag).filter((id) => ancestors(graph, id).size > 0);
        fc.pre(candidates.length > 0);
        const v = candidates[pickV % candidates.length]!;
        const before = [...ancestors(graph, v)];
        const u = before[pickU % before.length]!;
        const cyclic = { ...dag, [u]: [...dag[u]!, v] }; // u needs v, v (transitively) needs u
        let issues: ValidationError['issues'] = [];
        try {
          validateDefinition(definition(cyclic));
        } catch (err) {
          issues = (err as ValidationError).issues;
        }
        const cycles = issues.filter((i) => i.message.startsWith('cycle: '));
        expect(cycles.length).toBeGreaterThan(0);
        for (const issue of cycles) {
          const path = issue.message.slice('cycle: '.length).split(' → ');
          expect(path[0]).toBe(path.at(-1));
          for (let i = 0; i + 1 < path.length; i++) expect(cyclic[path[i]!]).toContain(path[i + 1]);
        }
      }),
      { numRuns: 100 },
    );
  });
});
