// Snapshot helpers for device models whose state is a handful of number and boolean fields: the
// model lists its fields once, and save and load both follow that list.

/** A device's saved fields, by name (plain JSON). */
export type FieldState = Record<string, number | boolean>;

/** The current values of `fields` of `obj`. */
export function saveFields(obj: object, fields: readonly string[]): FieldState {
  const o = obj as Record<string, unknown>;
  const out: FieldState = {};
  for (const f of fields) out[f] = o[f] as number | boolean;
  return out;
}

/**
 * Set `fields` of `obj` from `state`; each value must have the type the field has now. Throws an
 * error naming the device and the field otherwise.
 */
export function loadFields(obj: object, fields: readonly string[], state: unknown, what: string): void {
  if (typeof state !== 'object' || state === null) throw new Error(`${what}: no saved state`);
  const o = obj as Record<string, unknown>;
  const s = state as Record<string, unknown>;
  for (const f of fields) {
    const v = s[f];
    const want = typeof o[f];
    if (typeof v !== want || (want === 'number' && !Number.isFinite(v)))
      throw new Error(`${what}: field ${f} is ${JSON.stringify(v)}, expected a ${want}`);
  }
  for (const f of fields) o[f] = s[f];
}
