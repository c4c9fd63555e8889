/**
 * Stands in for `@grpc/grpc-js`, `@grpc/proto-loader` and `protobufjs` in the
 * bundle: dockerode loads them for image builds (BuildKit sessions and their
 * progress) only, which the agent never does; they are most of the bundle's
 * size. Anything that reaches them says so.
 */
function unsupported(): never {
  throw new Error("image builds are not supported by the agent");
}

export const loadPackageDefinition = unsupported;
export const loadSync = unsupported;
export const Root = { fromJSON: unsupported };
export const Server = unsupported;
export const ServerCredentials = { createInsecure: unsupported };
