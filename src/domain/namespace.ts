export type NamespaceKind = "user" | "organization";
export type NamespaceInfo = { name: string; kind: NamespaceKind; created_at: number; members: string[] };
