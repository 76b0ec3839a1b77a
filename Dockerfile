# bff's container image: a cached dependency layer, a release build, and a small runtime
# image (glibc and the binary, nothing else) that runs as a non-root user.
#
#   docker build -t bff .            (or: podman build -t bff .)
#   docker run --rm -e DATABASE_URL=… -e BETTER_AUTH_SECRET=… -e BETTER_AUTH_URL=… bff
#
# The base images are arguments: scripts/container builds them from Debian's packages with
# debootstrap where no image registry is reachable, and passes them in.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first: this layer is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
# Then bff itself (migrations and GraphiQL's assets are compiled into the binary).
COPY src src
COPY migrations migrations
COPY assets assets
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/bff

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/bff /usr/local/bin/bff
# distroless's "nonroot" user; any non-zero uid works, the image needs no home.
USER 65532:65532
ENV BFF_LISTEN=0.0.0.0:8080 \
    BFF_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["bff", "healthcheck"]
ENTRYPOINT ["bff"]
CMD ["serve"]
