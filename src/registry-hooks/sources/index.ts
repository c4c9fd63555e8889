/**
 * Every registry source. Adding one is its file plus its line here, and its
 * fixtures under test/fixtures/registry/<name>/: the contract test runs every
 * entry and fails for one without fixtures.
 */
import { acrSource } from "./acr";
import { distributionSource } from "./distribution";
import { dockerHubSource } from "./dockerhub";
import { genericSource } from "./generic";
import { gitHubSource } from "./github";
import { harborSource } from "./harbor";
import { quaySource } from "./quay";
import type { Source, SourceName } from "./source";

export type { Ignored, Parsed, Push, Source, SourceAuth, SourceName } from "./source";

export const SOURCES: Record<SourceName, Source> = {
  dockerhub: dockerHubSource,
  distribution: distributionSource,
  github: gitHubSource,
  harbor: harborSource,
  quay: quaySource,
  acr: acrSource,
  generic: genericSource,
};

export const SOURCE_NAMES = Object.keys(SOURCES) as SourceName[];

export const isSourceName = (name: string): name is SourceName => Object.hasOwn(SOURCES, name);
