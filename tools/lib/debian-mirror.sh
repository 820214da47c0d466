# shellcheck shell=bash
# Sourced by tools scripts. debian_mirror prints the main Debian mirror this machine's apt uses: the URI
# of the first deb entry whose suites include bookworm, from deb822 .sources files or one-line .list
# files under /etc/apt. Committed files never name a mirror host; they ask this instead.
debian_mirror() {
  local file uri
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    uri="$(awk '
      /^[[:space:]]*$/ { if (uris != "" && suites ~ /(^| )bookworm( |$)/ && types ~ /deb( |$)/) { print uris; exit } uris = suites = types = ""; next }
      /^URIs:/   { uris = $2 }
      /^Suites:/ { $1 = ""; suites = $0 " " }
      /^Types:/  { $1 = ""; types = $0 " " }
      END { if (uris != "" && suites ~ /(^| )bookworm( |$)/ && types ~ /deb( |$)/) print uris }' "$file" | head -n1)"
    [[ -n $uri ]] && { echo "$uri"; return 0; }
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $file ]] || continue
    uri="$(awk '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; s = ($2 ~ /^\[/) ? $4 : $3; if (s == "bookworm") { print u; exit } }' "$file")"
    [[ -n $uri ]] && { echo "$uri"; return 0; }
  done
  echo "no Debian bookworm mirror found in /etc/apt/sources.list*" >&2
  return 1
}
