// What the VMM needs of a board's serial console UART (the arm64-virt PL011, the x86-microvm 8250):
// console input with flow control, magic SysRq's BREAK, and the bytes the guest transmits.

export interface SerialConsole {
  /** Called with each byte the guest transmits. */
  onTx: (byte: number) => void;
  /** Free entries in the receive FIFO. */
  rxSpace(): number;
  /** Receive bytes from a line that cannot be held back; those that do not fit are lost. Returns how many entered. */
  receive(bytes: Uint8Array | ArrayLike<number>): number;
  /**
   * Offer bytes from a flow-controlled source (the console): takes what fits while the guest
   * listens and returns how many it took; the caller keeps the rest. Never overruns.
   */
  offerRx(bytes: Uint8Array | ArrayLike<number>): number;
  /** Receive a BREAK condition (Linux: BREAK then a key is a magic SysRq). False when the FIFO is full. */
  sendBreak(): boolean;
}
