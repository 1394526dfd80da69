// Command-line options shared by `run`, `create` and `launch` (config/spec.ts maps them to a VmSpec).

export const RUN_OPTIONS = {
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  dtb: { type: 'string' },
  'dump-dtb': { type: 'string' },
  cmdline: { type: 'string' },
  cpus: { type: 'string' },
  memory: { type: 'string' },
  disk: { type: 'string', multiple: true },
  net: { type: 'string', multiple: true },
  console: { type: 'string' },
  name: { type: 'string' },
  from: { type: 'string' },
  arch: { type: 'string' },
  accel: { type: 'string' },
  'no-rng': { type: 'boolean' },
  balloon: { type: 'boolean' },
  vsock: { type: 'string' },
  deterministic: { type: 'boolean' },
  'vcpu-threads': { type: 'string' },
  'log-unimplemented': { type: 'boolean' },
  gdb: { type: 'string' },
  'gdb-wait': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const RUN_HELP = `usage: typevisor run [CONFIG] [options]

Boots a guest in the foreground with its console on this terminal. Without --kernel (and without a
CONFIG naming one) it boots the default arm64 guest, building it on first use (typevisor image build).
CONFIG may be typevisor JSON, an xl .cfg, a Fuchsia guest config, microvm.nix options or CAmkES VM
attributes; options given here override it.

options:
  --kernel FILE         arm64 Image (plain, gzip, EFI zboot), ELF64 or raw binary (as QEMU virt)
  --initrd FILE         initramfs / initrd
  --dtb FILE            boot with this device tree instead of the generated one
  --dump-dtb FILE       write the generated device tree to FILE (and still boot)
  --cmdline TEXT        kernel command line
  --cpus N              vCPUs (default 1): aarch64 1 to 16, x86_64 1 to 64
  --memory MIB          guest RAM in MiB (default 512)
  --disk PATH[,ro]      virtio-blk disk from a raw image; repeatable
  --net user[,mac=MAC][,hostfwd=tcp::HOSTPORT-:GUESTPORT]...
                        a virtio-net NIC with user-mode networking (passt; no root needed): DHCP,
                        DNS and the host's services at the gateway address; hostfwd forwards a port
  --net tap=IFNAME[,mac=MAC]       a NIC on TAP device IFNAME (existing or new)
  --net bridge=BRIDGE[,mac=MAC]    a NIC on a new TAP attached to BRIDGE (removed with the VM)
  --net network=NAME[,mac=MAC]     a NIC on a typevisor network (typevisor network create)
                        --net is repeatable (eth0, eth1...); the MAC defaults to a stable
                        02:74:... address derived from the guest name and the NIC's index;
                        ,mtu=N (68-65520) sets the NIC's MTU (and its TAP's; default 65520 for
                        user, 1500 on a TAP or bridge)
  --console serial|virtio   console on the PL011 (ttyAMA0, default) or virtio-console (hvc0)
  --arch aarch64|x86_64 guest architecture (default: from the kernel; aarch64)
  --accel tcg|kvm|auto  engine: the software CPU (tcg, aarch64 guests) or /dev/kvm (kvm, x86_64
                        guests on x86_64 hosts); auto picks the one that runs the guest's arch
  --name NAME           guest name
  --from FORMAT         config format: native, xl, fuchsia, microvm, camkes (default: detected)
  --no-rng              no virtio-rng device
  --balloon             add a virtio-balloon device
  --vsock CID[,uds=PATH]  virtio-vsock with guest CID 3 to 4294967294. Host programs connect to
                        the Unix socket PATH and write 'CONNECT <port>\\n' (Firecracker's way); a
                        guest connecting to CID 2 port P reaches the Unix socket PATH_P. Default
                        PATH: NAME/vsock.sock in the state directory, or for run a path it prints
  --deterministic       guest counter follows the instruction count, the RTC follows it from
                        2026-01-01, virtio-rng and the DTB's rng-seed give a fixed byte stream
                        (repeatable runs; every vCPU then runs on one thread, in turn)
  --vcpu-threads multi|single  software CPU: each vCPU on its own host thread (multi, as QEMU's
                        -accel tcg,thread=multi) or all vCPUs in turn on one (single); default:
                        multi when the host has a core per vCPU
  --log-unimplemented   log each unimplemented instruction encoding once
  --gdb [HOST:]PORT     serve the GDB remote protocol on TCP (HOST default 127.0.0.1; port 0: any
                        free port, printed); connect with gdb-multiarch -ex 'target remote HOST:PORT'
  --gdb-wait            with --gdb: hold the guest at its first instruction until gdb continues it
  --restore FILE        (run only) bring up the guest saved in FILE (typevisor save) where it was,
                        instead of booting; only --name (and --memory/--cpus, checked against the
                        snapshot) go with it

console: on a terminal, keys go to the guest in raw mode; Ctrl-] quits (the VM is destroyed).
From a pipe, input waits until the guest reads it. Exit status: 0 on guest power-off,
3 on a kernel panic, 2 on a usage or config error.
`;
