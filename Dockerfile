# kms-operator image: build with cargo-chef (dependencies cached in their own layer), run from
# distroless as a non-root user with no shell. The release build command below is the one CI
# runs outside Docker (.ci/run, `make release`), since these machines have no Docker engine.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# build-command
RUN cargo build --release --locked --bin kms-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kms-operator /usr/local/bin/kms-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kms-operator"]
CMD ["run"]
