#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vaccel-hvsock-attach: serve Kata Containers sandboxes that run under
# Firecracker (or Cloud Hypervisor) over hybrid vsock.
#
# Such a VMM exposes the guest's vsock device as one host Unix socket per
# sandbox (Kata names it kata.hvsock, in the sandbox's runtime directory). A
# guest connection to CID 2, port P arrives on the host Unix socket
# "<that path>_P", so each sandbox needs a listener of its own (docs/vm.md).
# This loop watches for sandbox sockets and runs one
#   vaccel agent --listen hybrid-vsock://<sandbox>/kata.hvsock:PORT [ARGS...]
# per sandbox, stopping it when the sandbox goes away.
#
# Usage: vaccel-hvsock-attach [extra `vaccel agent` arguments...]
#
# Environment:
#   VACCEL_HVSOCK_PORT     guest vsock port the functions dial (default 2048,
#                          i.e. VACCEL_RPC_ADDRESS=vsock://2:2048 in the guest)
#   VACCEL_HVSOCK_GLOBS    ':'-separated globs of sandbox sockets (default:
#                          the Go runtime's /run/vc/firecracker/*/root/kata.hvsock
#                          and runtime-rs's /run/kata/*/kata.hvsock,
#                          /run/kata/firecracker/*/root/kata.hvsock)
#   VACCEL_HVSOCK_INTERVAL seconds between scans (default 1)
#   VACCEL_BIN             the vaccel binary (default: vaccel on PATH)
set -euo pipefail
shopt -s nullglob

port=${VACCEL_HVSOCK_PORT:-2048}
globs=${VACCEL_HVSOCK_GLOBS:-/run/vc/firecracker/*/root/kata.hvsock:/run/kata/*/kata.hvsock:/run/kata/firecracker/*/root/kata.hvsock}
interval=${VACCEL_HVSOCK_INTERVAL:-1}
vaccel=${VACCEL_BIN:-vaccel}
case "$port" in '' | *[!0-9]*) echo "vaccel-hvsock-attach: VACCEL_HVSOCK_PORT must be a number, got '$port'" >&2; exit 2 ;; esac

declare -A pid started
log() { printf 'vaccel-hvsock-attach: %s\n' "$*" >&2; }

stop_all() {
	local uds
	for uds in "${!pid[@]}"; do kill -TERM "${pid[$uds]}" 2>/dev/null || true; done
	wait || true
	exit 0
}
trap stop_all TERM INT

log "watching ${globs} for sandboxes; guest port ${port}"
while :; do
	declare -A seen=()
	IFS=: read -r -a patterns <<<"$globs"
	for pattern in "${patterns[@]}"; do
		for uds in $pattern; do
			[ -S "$uds" ] || continue
			seen[$uds]=1
			if [ -n "${pid[$uds]:-}" ] && kill -0 "${pid[$uds]}" 2>/dev/null; then
				continue
			fi
			# Do not respawn an agent that keeps failing faster than every 10 s.
			now=$(date +%s)
			if [ -n "${started[$uds]:-}" ] && [ $((now - started[$uds])) -lt 10 ]; then
				continue
			fi
			[ -n "${pid[$uds]:-}" ] && log "agent for $uds exited; restarting"
			"$vaccel" agent --listen "hybrid-vsock://${uds}:${port}" "$@" &
			pid[$uds]=$!
			started[$uds]=$now
			log "sandbox $uds: agent pid ${pid[$uds]} on ${uds}_${port}"
		done
	done
	for uds in "${!pid[@]}"; do
		if [ -z "${seen[$uds]:-}" ]; then
			log "sandbox $uds gone: stopping agent pid ${pid[$uds]}"
			kill -TERM "${pid[$uds]}" 2>/dev/null || true
			wait "${pid[$uds]}" 2>/dev/null || true
			unset "pid[$uds]" "started[$uds]"
		fi
	done
	unset seen
	sleep "$interval" &
	wait $! || true
done
