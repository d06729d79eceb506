#!/bin/sh
# List or install the Debian packages of debian-packages.txt by tag.
#   tools/deps.sh list TAG...      print the packages carrying any of the tags
#   tools/deps.sh missing TAG...   print those not installed
#   tools/deps.sh install TAG...   apt-get install the missing ones (root only);
#                                  does nothing, and needs no network, when none is missing
set -eu
here=$(dirname "$0")
list="$here/../debian-packages.txt"
cmd=${1:-}
[ -n "$cmd" ] && shift || { echo "usage: tools/deps.sh list|missing|install TAG..." >&2; exit 2; }
[ "$#" -gt 0 ] || { echo "tools/deps.sh: name at least one tag" >&2; exit 2; }

pkgs_for() {
	sed -e 's/#.*//' "$list" | while read -r pkg tags; do
		[ -n "$pkg" ] || continue
		for want in "$@"; do
			case " $tags " in *" $want "*) echo "$pkg"; break ;; esac
		done
	done
}

missing_for() {
	for p in $(pkgs_for "$@"); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

case "$cmd" in
list) pkgs_for "$@" ;;
missing) missing_for "$@" ;;
install)
	miss=$(missing_for "$@")
	[ -n "$miss" ] || exit 0
	if [ "$(id -u)" != 0 ]; then
		echo "outrigger: missing Debian packages:" $miss >&2
		echo "outrigger: install them with: sudo apt-get install -y" $miss >&2
		exit 1
	fi
	echo "outrigger: installing" $miss >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q $miss >/dev/null 2>&1 || {
		apt-get update -q >/dev/null && apt-get install -y -q $miss >/dev/null
	}
	;;
*) echo "tools/deps.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
