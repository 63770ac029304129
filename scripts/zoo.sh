#!/usr/bin/env bash
# The main job: check, report, draw and compile every spec of the zoo into out/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
mkdir -p "$out"
specs=(specs/*.yaml)
archdsl check "${specs[@]}"
not_compiled=()
for spec in "${specs[@]}"; do
  name="$(basename "$spec" .yaml)"
  archdsl report "$spec" --format md -o "$out/$name.md"
  archdsl report "$spec" --format json -o "$out/$name.json"
  archdsl draw "$spec" -o "$out/$name.svg"
  # a refused compile (its located message is on stderr) does not stop the rest of the zoo
  archdsl compile "$spec" -o "$out/$name.py" || not_compiled+=("$name")
done
archdsl report "${specs[@]}" --format md -o "$out/zoo.md"
if ((${#not_compiled[@]})); then
  echo "zoo: ${#specs[@]} specs checked, reported and drawn into $out/;" \
       "compile refused ${#not_compiled[@]}: ${not_compiled[*]}" >&2
  exit 1
fi
echo "zoo: ${#specs[@]} specs checked, reported, drawn and compiled into $out/"
