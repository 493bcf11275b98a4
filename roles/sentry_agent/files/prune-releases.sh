#!/bin/sh
# Remove unpacked releases (and their bundles) beyond the newest KEEP by unpack time, never
# the ones current or previous point at. Prints each release it removes (with "check", the
# ones it would remove, removing nothing). Hidden directories (an unpack in progress) are
# not releases. One process instead of a find, two stats and a removal per release.
# Usage: prune-releases.sh KEEP RELEASES_DIR BUNDLES_DIR CURRENT PREVIOUS apply|check
set -eu
keep=$1 releases=$2 bundles=$3 current=$4 previous=$5 mode=$6
in_use="$(readlink -- "$current" || true)
$(readlink -- "$previous" || true)"
count=0
# Release directories are named after versions (no blanks), so word splitting is safe here.
# shellcheck disable=SC2045
for dir in $(ls -1dt -- "$releases"/*/ 2>/dev/null); do
	dir=${dir%/}
	count=$((count + 1))
	[ "$count" -le "$keep" ] && continue
	printf '%s\n' "$in_use" | grep -qxF -- "$dir" && continue
	echo "$dir"
	if [ "$mode" = apply ]; then
		rm -rf -- "$dir" "$bundles/${dir##*/}.tar.gz"
	fi
done
