// A user error: bad config, missing file, unknown option. The CLI prints its message alone (no stack
// trace) and exits non-zero. The message names the file/key/option and what was expected.
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
