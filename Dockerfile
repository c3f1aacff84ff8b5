# sessiond as a container image: a static binary (no cgo: the SQLite store is
# pure Go) on a distroless base, running as an unprivileged user.
#
#   docker build -t sessiond .
#   docker run -p 8080:8080 -e SESSIOND_PUBLIC_URL=http://localhost:8080 sessiond
#   docker run -p 8080:8080 -e SESSIOND_PUBLIC_URL=https://auth.example.com \
#     -e SESSIOND_DATABASE_URL=postgres://... sessiond
#
# SESSIOND_PUBLIC_URL must be given: the image listens on 0.0.0.0:8080, and
# http://0.0.0.0:8080 is no URL a client can use, nor a usable token issuer,
# so sessiond refuses to start without it, saying so. The image does not set
# one, since any default would be wrong for every real deployment.
#
# Untested here: the machine this was written on has no container engine.
# See docs/OPERATIONS.md.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sessiond ./cmd/sessiond \
 && mkdir -p /out/data

# static: no libc, no shell, no package manager; :nonroot is uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessiond /usr/local/bin/sessiond
# A writable directory for the embedded SQLite store (the default database);
# mount a volume here to keep it. With PostgreSQL nothing is written locally.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
# Listen on every interface inside the container; the default 127.0.0.1
# would be unreachable from outside it. No SESSIOND_PUBLIC_URL here (see
# the top of this file): `docker run` passes it.
ENV SESSIOND_ADDR=0.0.0.0:8080 \
    SESSIOND_DATABASE_URL=sqlite:/data/sessiond.db
EXPOSE 8080
VOLUME ["/data"]
# sessiond stops gracefully on SIGTERM (docker stop's signal), finishing
# in-flight requests for up to SESSIOND_SHUTDOWN_TIMEOUT (15s): give
# `docker stop -t` at least that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sessiond"]
CMD ["serve"]
