#!/bin/sh
# The installed headers cite only what is installed with them: every
# "docs/NAME.md" they name exists (make install puts docs/*.md in
# share/doc/hmt), and they cite no other file (algorithms.md, for one, is a
# design note outside the repository).
set -eu
bad=0
for ref in $(grep -oh 'docs/[A-Za-z_]*\.md' include/hmt/*.h | sort -u); do
    [ -f "$ref" ] || { echo "check_header_citations: FAIL: $ref is cited but does not exist"; bad=1; }
done
if grep -n '[A-Za-z_]*\.md\|algorithms' include/hmt/*.h | grep -v 'docs/[A-Za-z_]*\.md' |
    grep -v 'docs/\*\.md'; then
    echo "check_header_citations: FAIL: a header cites a page outside docs/ (above)"
    bad=1
fi
[ $bad -eq 0 ] || exit 1
echo "check_header_citations: OK ($(grep -oh 'docs/[A-Za-z_]*\.md' include/hmt/*.h | sort -u | wc -l) pages cited, all in docs/ and installed)"
