#!/bin/bash
# t_98zd: t_98zb with sync_replicas = 0: a registered replica that comes back without
# streamed segments it acknowledged is sent them again when they are pushed (issue 13).
SYNC_REPLICAS=0
# shellcheck source=test/system/t_98zb_stream_recent_lost.sh
. "$(dirname "$0")/t_98zb_stream_recent_lost.sh"
