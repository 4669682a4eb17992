#!/usr/bin/env bash
# Render resources/voicegui.svg to the PNG sizes desktops ask for (hicolor theme sizes, 16..512).
# The PNGs are committed, so neither a build nor an install needs this; run it after changing the SVG.
# Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")/../.."
for size in 16 22 24 32 48 64 128 256 512; do
    mkdir -p "resources/icons/${size}x${size}"
    rsvg-convert --width "$size" --height "$size" --keep-aspect-ratio \
        --output "resources/icons/${size}x${size}/voicegui.png" resources/voicegui.svg
done
echo "rendered resources/icons/*/voicegui.png"
