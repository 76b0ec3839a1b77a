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
# The commit built (`git rev-parse --short=12 HEAD`; .git is not in the build context):
# `bff --version` and the image's labels name it.
ARG BFF_COMMIT=unknown
ARG BFF_VERSION=0.1.0

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
COPY build.rs ./
COPY src src
COPY migrations migrations
COPY assets assets
COPY templates templates
ARG BFF_COMMIT
RUN touch src/main.rs src/lib.rs \
 && BFF_COMMIT=${BFF_COMMIT} cargo build --release --locked \
 && strip target/release/bff

FROM ${RUNTIME_IMAGE}
ARG BFF_COMMIT
ARG BFF_VERSION
LABEL org.opencontainers.image.title="bff" \
      org.opencontainers.image.description="GraphQL backend-for-frontend for the photo app: Better Auth sessions, Stripe billing, credits and photo jobs" \
      org.opencontainers.image.version="${BFF_VERSION}" \
      org.opencontainers.image.revision="${BFF_COMMIT}"
COPY --from=build /src/target/release/bff /usr/local/bin/bff
# distroless's "nonroot" user; any non-zero uid works, the image needs no home.
USER 65532:65532
# With BFF_LISTEN unset, bff listens on 0.0.0.0:$PORT: a PaaS that assigns another port
# overrides PORT alone.
ENV PORT=8080 \
    BFF_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["bff", "healthcheck"]
ENTRYPOINT ["bff"]
CMD ["serve"]
