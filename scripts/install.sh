#!/usr/bin/env bash
# Installs shadowtap as a systemd service on this host, or stages the same
# files into a directory.
#
#   scripts/install.sh [--dest DIR] [--prefix DIR] [--unit-dir DIR] [--binary FILE]
#   scripts/install.sh --uninstall [--purge] [--dest DIR] [--prefix DIR] [--unit-dir DIR]
#
# Installs:
#   PREFIX/bin/shadowtap                    the binary (target/release/shadowtap,
#                                           built with cargo if missing, or --binary)
#   UNIT_DIR/shadowtap.service              the unit (ExecStart follows PREFIX)
#   UNIT_DIR/shadowtap-ebpf.service         the same with the eBPF source (either one runs)
#   /etc/shadowtap/shadowtap.toml           the default config, only if absent
#   /etc/logrotate.d/shadowtap              rotation of /var/log/shadowtap/*.jsonl
#   PREFIX/share/doc/shadowtap/             README, INSTALL.md
# PREFIX defaults to /usr, UNIT_DIR to /etc/systemd/system (env PREFIX and
# UNIT_DIR work too). --dest DIR puts everything under DIR (like DESTDIR),
# touches nothing else on the host and needs no root.
#
# It never enables or starts the service: it runs `systemctl daemon-reload`
# when systemd is running and prints the next step. --uninstall stops and
# disables the service, removes the files above except the config, and
# keeps /var/lib/shadowtap and /var/log/shadowtap; --purge removes those and
# the config as well.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
args="$*"
dest=""
prefix="${PREFIX:-/usr}"
unit_dir="${UNIT_DIR:-/etc/systemd/system}"
binary=""
uninstall=0
purge=0

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
    --dest=*) dest="${1#*=}"; shift ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --unit-dir) unit_dir="${2:?--unit-dir needs a directory}"; shift 2 ;;
    --unit-dir=*) unit_dir="${1#*=}"; shift ;;
    --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
    --binary=*) binary="${1#*=}"; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge goes with --uninstall"
case "$prefix" in /*) ;; *) die "--prefix must be absolute: $prefix" ;; esac
case "$unit_dir" in /*) ;; *) die "--unit-dir must be absolute: $unit_dir" ;; esac
if [ -n "$dest" ]; then
  mkdir -p "$dest"
  dest="$(cd "$dest" && pwd)"
  [ "$dest" != / ] || dest=""
fi

bin_path="$prefix/bin/shadowtap"
unit_path="$unit_dir/shadowtap.service"
ebpf_unit_path="$unit_dir/shadowtap-ebpf.service"
conf_dir="/etc/shadowtap"
conf_path="$conf_dir/shadowtap.toml"
logrotate_path="/etc/logrotate.d/shadowtap"
doc_dir="$prefix/share/doc/shadowtap"

# Acting on the live system (no --dest): root, and systemd when it runs.
live=0
[ -n "$dest" ] || live=1
if [ "$live" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0${args:+ $args}), or stage with --dest DIR"
fi
systemd_up=0
if [ "$live" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemd_up=1
fi

if [ "$live" -eq 1 ] && command -v dpkg-query >/dev/null \
  && dpkg-query -W -f='${Status}' shadowtap 2>/dev/null | grep -q "install ok installed"; then
  die "the shadowtap Debian package is installed: use apt-get remove/purge shadowtap (or remove it before using this script)"
fi

if [ "$uninstall" -eq 1 ]; then
  if [ "$systemd_up" -eq 1 ]; then
    systemctl disable --now shadowtap.service shadowtap-ebpf.service 2>/dev/null || true
  fi
  for f in "$bin_path" "$unit_path" "$ebpf_unit_path" "$logrotate_path" "$doc_dir/README.md" "$doc_dir/INSTALL.md"; do
    if [ -e "$dest$f" ] || [ -L "$dest$f" ]; then rm -f "$dest$f"; say "removed $dest$f"; fi
  done
  rmdir "$dest$doc_dir" 2>/dev/null || true
  if [ "$purge" -eq 1 ]; then
    # DynamicUser keeps the real directories under private/, with symlinks.
    for d in "$conf_dir" /var/lib/shadowtap /var/lib/private/shadowtap /var/log/shadowtap /var/log/private/shadowtap; do
      if [ -e "$dest$d" ] || [ -L "$dest$d" ]; then rm -rf "$dest$d"; say "removed $dest$d"; fi
    done
  else
    [ ! -e "$dest$conf_path" ] || say "kept $dest$conf_path (--purge removes it, and /var/lib/shadowtap, /var/log/shadowtap)"
  fi
  if [ "$systemd_up" -eq 1 ]; then
    systemctl daemon-reload
    systemctl reset-failed shadowtap.service shadowtap-ebpf.service 2>/dev/null || true
  fi
  exit 0
fi

# The binary: --binary, else target/release/shadowtap, built if missing.
if [ -z "$binary" ]; then
  binary="$here/target/release/shadowtap"
  if [ ! -x "$binary" ]; then
    command -v cargo >/dev/null || die "$binary is missing and cargo is not installed: build elsewhere and pass --binary FILE, or run scripts/setup"
    say "building $binary"
    (cd "$here" && cargo build --release --bin shadowtap)
  fi
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "not an executable file: $binary"; fi
for unit in shadowtap.service shadowtap-ebpf.service; do
  [ -f "$here/systemd/$unit" ] || die "missing $here/systemd/$unit"
done

if [ "$live" -eq 1 ]; then
  # libpcap at run time (the Debian package is libpcap0.8).
  if command -v ldd >/dev/null && ldd "$binary" 2>/dev/null | grep -q 'libpcap.*not found'; then
    die "libpcap is missing on this host: apt-get install libpcap0.8 (or your distribution's libpcap)"
  fi
  if [ "$systemd_up" -eq 1 ]; then
    v="$(systemctl --version | awk 'NR==1 {print $2}' | sed 's/[^0-9].*//')"
    if [ -n "$v" ] && [ "$v" -lt 235 ]; then
      die "systemd $v is too old for this unit (DynamicUser, StateDirectory and LogsDirectory need 235 or later)"
    elif [ -n "$v" ] && [ "$v" -lt 247 ]; then
      echo "install.sh: warning: systemd $v ignores some hardening directives of the unit (ProtectProc, ProcSubset need 247); it still runs" >&2
    fi
  fi
fi

install -d -m 0755 "$dest$prefix/bin" "$dest$unit_dir" "$dest$conf_dir" "$dest/etc/logrotate.d" "$dest$doc_dir"
install -m 0755 "$binary" "$dest$bin_path"
say "installed $dest$bin_path"

unit_tmp="$(mktemp)"
trap 'rm -f "$unit_tmp"' EXIT
for unit in "$unit_path" "$ebpf_unit_path"; do
  sed -e "s#/usr/bin/shadowtap#$bin_path#g" -e "s#/usr/share/doc/shadowtap#$doc_dir#g" \
    "$here/systemd/$(basename "$unit")" >"$unit_tmp"
  install -m 0644 "$unit_tmp" "$dest$unit"
  say "installed $dest$unit"
done

if [ -e "$dest$conf_path" ]; then
  say "kept $dest$conf_path (exists; the shipped default is $here/systemd/shadowtap.toml)"
else
  install -m 0644 "$here/systemd/shadowtap.toml" "$dest$conf_path"
  say "installed $dest$conf_path"
fi

install -m 0644 "$here/systemd/shadowtap.logrotate" "$dest$logrotate_path"
say "installed $dest$logrotate_path"

install -m 0644 "$here/README.md" "$dest$doc_dir/README.md"
[ ! -f "$here/systemd/INSTALL.md" ] || install -m 0644 "$here/systemd/INSTALL.md" "$dest$doc_dir/INSTALL.md"
say "installed $dest$doc_dir/"

if [ "$systemd_up" -eq 1 ]; then
  systemctl daemon-reload
  say "ran systemctl daemon-reload"
elif [ "$live" -eq 1 ]; then
  say "systemd is not running here: no daemon-reload done"
fi

cat <<EOF

Next:
  1. edit $conf_path: [capture] interface and ports, [candidate] url
  2. systemctl enable --now shadowtap
     (or, for the eBPF source, set [ebpf] pids or units and: systemctl enable --now shadowtap-ebpf)
  3. journalctl -u shadowtap -f    and    curl -s 127.0.0.1:9187/metrics
EOF
