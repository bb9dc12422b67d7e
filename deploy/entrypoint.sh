#!/bin/sh
# The container's entry point: runs the silo host with what a container needs, then the arguments given to
# `docker run IMAGE ...` (or a compose `command:`), which come last and so win over these.
#
# Always: the HTTP API on every interface (--http-host 0.0.0.0), so a published port reaches it, and the ring
# node on port 4000 (--ring-port, the port the image exposes).
# With redis clustering (--clustering redis, or Silo__Clustering=redis): also --address with the container's
# own IP, the address the other silos dial. Without it (localhost clustering, the host's default: one silo)
# no address is passed, since localhost clustering listens on 127.0.0.1 only and refuses any other. Redis clustering
# chosen only in a mounted appsettings.json is not seen here: give --address (or --clustering redis) then.
set -eu

# Environment keys are case-insensitive to .NET: take Silo__Clustering in the spellings one would use.
clustering="${Silo__Clustering:-${SILO__CLUSTERING:-${silo__clustering:-localhost}}}"
previous=""
for arg in "$@"; do
  name=$(printf '%s' "${arg%%=*}" | tr '[:upper:]' '[:lower:]')
  case "$previous" in
    --clustering | --silo:clustering) clustering="$arg" ;;
  esac
  previous="$name"
  case "$arg" in
    *=*)
      previous=""
      case "$name" in
        --clustering | --silo:clustering) clustering="${arg#*=}" ;;
      esac
      ;;
  esac
done

if [ "$clustering" = "redis" ]; then
  address=$(hostname -i | cut -d' ' -f1)
  set -- --address "$address" "$@"
fi

exec dotnet /app/Chord.Silo.dll --http-host 0.0.0.0 --ring-port 4000 "$@"
