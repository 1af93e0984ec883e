/**
 * When a resident agent dies (killed on the host, its channel closed under it, its records no
 * longer make sense, or it stops answering): how to say how it ended, the command that does what
 * the dead agent no longer can (kill its step's process group, remove its state file; KILL a
 * stuck agent), and the error the other steps on its connection report once the worker has
 * closed that connection because of it.
 */
import { StepError } from '../../errors.ts';
import type { AgentExit } from './agent.ts';
import { agentStateFile } from './agent-script.ts';
import { describeTarget } from './connect-errors.ts';
import { buildKillCommand } from './remote-script.ts';
import type { HostTarget } from './types.ts';

/** `signal SIGKILL`, `exit 2`, or `no exit status`: how the agent's channel ended. */
export function describeExit(exit: AgentExit | undefined): string {
  if (!exit) return 'no exit status';
  return exit.signal ? `signal ${exit.signal}` : `exit ${exit.code ?? '-'}`;
}

/**
 * The shell command run on the host after agent `agentId` died or stopped answering: KILLs it
 * when it is `stuck` (its pid: alive but not answering, e.g. stopped), removes its state file
 * and, with `step`, kills that step's group (TERM, KILL after `graceMs`), printing which signal
 * ended it (`buildKillCommand`).
 */
export function deathCleanup(
  agentId: string,
  { step, stuck }: { step?: { pgid: number; sudo: boolean; graceMs: number }; stuck?: number } = {},
): string {
  if (stuck !== undefined && (!Number.isInteger(stuck) || stuck < 2))
    throw new RangeError(`bad agent pid ${stuck}`);
  const parts = [
    ...(stuck !== undefined ? [`kill -s KILL ${stuck} 2>/dev/null`] : []),
    `rm -f -- ${agentStateFile(agentId)}`,
    ...(step ? [buildKillCommand(step.pgid, step.sudo, step.graceMs)] : []),
  ];
  return parts.join('; ');
}

/**
 * Why the worker closed a connection: agent `agentPid` on it `how` (e.g. "ended (signal
 * SIGKILL)"). Retriable: the next attempt gets a new connection and a new agent. The steps that
 * were running on it add " while the step was running".
 */
export function agentLostError(target: HostTarget, agentPid: number, how: string): StepError {
  return new StepError(
    'connection_lost',
    `${describeTarget(target)}: a step agent on this connection (pid ${agentPid}) ${how}, so the worker closed the connection`,
    true,
  );
}
