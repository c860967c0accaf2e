/**
 * Wait for a condition instead of sleeping a guessed time: tests stay correct on a loaded
 * machine. Polls every 5 ms; throws with `what` after `timeoutMs` so a hang fails clearly.
 */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
