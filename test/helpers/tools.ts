// Skip reasons for tests that need host tools.
import { execFileSync } from 'node:child_process';

/** A skip reason naming the first missing tool, or false when all are on PATH. */
export function missingTool(...tools: string[]): string | false {
  for (const t of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
    } catch {
      return `${t} is not installed (run bash scripts/setup.sh)`;
    }
  }
  return false;
}
