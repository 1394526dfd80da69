// `typevisor image build [--force]`: build (or refresh) the default arm64 guest image from Debian's
// packages: kernel, initramfs with busybox and the virtio modules, and an ext4 data disk.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { buildDefaultImage } from '../image/build.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help || positionals[0] !== 'build' || positionals.length !== 1) {
    const text = 'usage: typevisor image build [--force]\n\nBuilds the default arm64 guest (Debian kernel + busybox initramfs + ext4 data disk)\ninto ~/.cache/typevisor/images (TYPEVISOR_CACHE overrides the cache directory).\n';
    if (values.help) {
      process.stdout.write(text);
      return 0;
    }
    throw new UserError(`image: expected 'build'\n${text}`);
  }
  const img = await buildDefaultImage({ force: !!values.force, log: (m: string) => process.stderr.write(`typevisor: ${m}\n`) });
  process.stdout.write(`kernel: ${img.kernel}\ninitrd: ${img.initrd}\ndisk: ${img.disk}\n`);
  return 0;
}
