// The vCPU-engine interface: how the VMM drives a machine's vCPUs, whichever engine runs them
// (tcg: the software AArch64 CPU, cpu/arm64/engine.ts; kvm: /dev/kvm, cpu/kvm/engine.ts).

/** Why an engine's run() ended: the guest powered off or reset, or stop() was called. */
export type StopReason = 'poweroff' | 'reboot' | 'stopped';

export interface VcpuEngine {
  readonly kind: 'tcg' | 'kvm';
  /** Run every vCPU until the guest powers off or resets, or stop() is called. */
  run(): Promise<StopReason>;
  /** End run() with `reason` (the first reason given wins); vCPUs stop at an instruction boundary. */
  stop(reason: StopReason): void;
  /** Hold every vCPU at an instruction boundary until resume(); run() keeps waiting meanwhile. */
  pause(): void;
  /** Resolves once a pause has taken effect: every vCPU is held at an instruction boundary. */
  held(): Promise<void>;
  resume(): void;
  readonly isPaused: boolean;
  /** Wake the engine's loop if it sleeps (console input arrived, a device has work). */
  kick(): void;
  /** Called on the VMM's thread between run slices (tcg) or after exits (kvm): device polling. */
  onSlice: () => void;
  /** Guest instructions retired (tcg); undefined where the engine cannot count them (kvm). */
  readonly instructions: number | undefined;
  /** Every vCPU waits for an interrupt or is off (where the engine can tell; kvm cannot). */
  readonly idle: boolean;
}
