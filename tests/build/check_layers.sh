#!/bin/sh
# lib/'s layers (LIB_LAYERS in the Makefile, lowest first): no file of a
# layer includes a header of a layer listed after it, and every folder of
# lib/ is a listed layer.
set -eu
layers=$(sed -n 's/^LIB_LAYERS := //p' Makefile)
[ -n "$layers" ] || { echo "check_layers: FAIL: no LIB_LAYERS in the Makefile"; exit 1; }
for d in lib/*/; do
    d=${d%/}; d=${d#lib/}
    case " $layers " in *" $d "*) ;; *) echo "check_layers: FAIL: lib/$d is not in LIB_LAYERS"; exit 1 ;; esac
done
bad=0 below=""
for l in $layers; do
    below="$below $l"
    for upper in $layers; do
        case " $below " in *" $upper "*) continue ;; esac
        if grep -ln "#include \"$upper/" lib/$l/* 2>/dev/null; then
            echo "check_layers: FAIL: lib/$l includes lib/$upper, a layer above it"
            bad=1
        fi
    done
done
[ $bad -eq 0 ] || exit 1
echo "check_layers: OK ($(echo $layers | wc -w) layers: $layers)"
