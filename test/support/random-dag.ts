/** fast-check arbitraries for random DAGs (acyclic by construction: edges go to earlier nodes). */
import fc from 'fast-check';

/** `needs` per step id; ids are shuffled so definition order is not topological order. */
export type Dag = Record<string, string[]>;

/** A random DAG of 1..maxSteps steps, with a bounded number of needs per step. */
export function dagArbitrary(maxSteps: number, maxNeeds = 4): fc.Arbitrary<Dag> {
  return fc
    .integer({ min: 1, max: maxSteps })
    .chain((n) =>
      fc.tuple(
        fc.array(fc.uniqueArray(fc.nat(), { maxLength: maxNeeds }), { minLength: n, maxLength: n }),
        fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      ),
    )
    .map(([needs, perm]) => {
      const id = (i: number) => `s${perm[i]}`;
      const dag: Dag = {};
      // Insert in permuted order so definition order differs from dependency order.
      const order = [...perm.keys()].sort((a, b) => perm[a]! - perm[b]!);
      for (const i of order) {
        dag[id(i)] = i === 0 ? [] : [...new Set(needs[i]!.map((k) => k % i))].map(id);
      }
      return dag;
    });
}
