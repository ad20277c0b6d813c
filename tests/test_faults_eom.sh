#!/bin/bash
# test_faults_eom - test_faults with redis.fetch_at = "eom": the same
# faults through a real Postfix, with cache misses looked up at the end of
# the message, where a failed lookup answers the whole message 451 at the
# end of DATA.  The same accounting: nothing accepted is lost, duplicated
# or misrouted, and everything refused got a 4xx.
FETCH_AT=eom exec bash "$(dirname "$0")/test_faults.sh" "$@"
