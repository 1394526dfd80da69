// `typevisor network create NAME --subnet ADDRESS/PREFIX | list | destroy NAME`: host networks (a
// bridge with a DHCP server, see host/network.ts), kept in the state directory's networks/ folder.
// Guests join one with `--net network=NAME`.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import {
  createNetwork,
  destroyNetwork,
  dnsmasqPid,
  listNetworks,
  networkLeases,
} from '../host/network.js';
import { networksDir } from '../config/spec.js';

const HELP = `usage: typevisor network create NAME --subnet ADDRESS/PREFIX
       typevisor network list
       typevisor network destroy NAME

create: a host bridge (tv-NAME) holding ADDRESS (e.g. 10.77.0.1/24) and a DHCP server (dnsmasq)
for the rest of the subnet; guests join with --net network=NAME and reach each other and the host.
destroy: stops its DHCP server and deletes the bridge. Needs root (CAP_NET_ADMIN).
`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { subnet: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const [cmd, ...rest] = positionals;
  const dir = networksDir();
  switch (cmd) {
    case 'create': {
      if (rest.length !== 1) throw new UserError('network create: expected one NAME (typevisor network create NAME --subnet 10.77.0.1/24)');
      if (!values.subnet) throw new UserError('network create: --subnet ADDRESS/PREFIX is required, e.g. --subnet 10.77.0.1/24');
      const rec = await createNetwork(dir, rest[0], values.subnet);
      process.stdout.write(
        `network ${rec.name}: bridge ${rec.bridge} ${rec.address}/${rec.prefix}, DHCP ${rec.range[0]}-${rec.range[1]}\n`,
      );
      return 0;
    }
    case 'list': {
      if (rest.length > 0) throw new UserError('network list: takes no arguments');
      const nets = listNetworks(dir);
      const rows = [['NAME', 'BRIDGE', 'ADDRESS', 'DHCP', 'LEASES']];
      for (const n of nets) {
        rows.push([
          n.name,
          n.bridge,
          `${n.address}/${n.prefix}`,
          dnsmasqPid(dir, n) !== undefined ? `${n.range[0]}-${n.range[1]}` : 'not running',
          String(networkLeases(dir, n.name).length),
        ]);
      }
      const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd() + '\n');
      return 0;
    }
    case 'destroy': {
      if (rest.length !== 1) throw new UserError('network destroy: expected one NAME');
      await destroyNetwork(dir, rest[0]);
      return 0;
    }
    default:
      throw new UserError(`network: unknown command '${cmd}' (expected create, list or destroy)`);
  }
}
