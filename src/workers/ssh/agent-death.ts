/**
 * When a resident agent dies (killed on the host, its channel closed under it, or its records no
 * longer make sense): how to say how it ended, the command that does what the dead agent no
 * longer can (kill its step's process group, remove its state file), and the error the other
 * steps on its connection report once the worker has closed that connection because of it.
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
 * The shell command run on the host after agent `agentId` died: removes its state file and,
 * when `pgid` is given, kills that step group (TERM, KILL after `graceMs`) and prints which
 * signal ended it (`buildKillCommand`).
 */
export function deathCleanup(
  agentId: string,
  step?: { pgid: number; sudo: boolean; graceMs: number },
): string {
  const rm = `rm -f -- ${agentStateFile(agentId)}`;
  return step ? `${rm}; ${buildKillCommand(step.pgid, step.sudo, step.graceMs)}` : rm;
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
