/** Namespace (user or organization) names: 4-30 of a-z0-9, as Docker Hub allowed. */
export const NAMESPACE_NAME = /^[a-z0-9]{4,30}$/;

/** Words that name API paths, so a namespace called so would make a path ambiguous. */
export const RESERVED_NAMES = new Set([
  "account",
  "action",
  "admin",
  "apikey",
  "apps",
  "audit",
  "call",
  "container",
  "event",
  "events",
  "infra",
  "member",
  "node",
  "nodecluster",
  "nodetype",
  "openapi",
  "organization",
  "provider",
  "redeploy",
  "region",
  "registry",
  "repository",
  "scale",
  "service",
  "stack",
  "trigger",
  "user",
]);

export function namespaceNameProblem(name: string): string | null {
  if (!NAMESPACE_NAME.test(name)) return "must be 4 to 30 characters of lower-case letters a-z and digits 0-9";
  if (RESERVED_NAMES.has(name)) return `'${name}' is reserved because it names an API path`;
  return null;
}
