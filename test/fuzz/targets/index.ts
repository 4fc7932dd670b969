// Every fuzz target (issue 17 item 3); test/fuzz/fuzz.test.ts runs each briefly, test/fuzz/run.ts longer.
import { type FuzzTarget } from '../harness.js';
import { derChain } from './der-chain.js';
import { meshFile, policyDocuments } from './documents.js';
import { protoDecoders } from './proto.js';
import { requestTarget } from './request-target.js';
import { routerSemantics } from './router.js';
import { spiffeId } from './spiffe-id.js';

export const TARGETS: readonly FuzzTarget[] = [requestTarget, routerSemantics, spiffeId, derChain, policyDocuments, meshFile, protoDecoders];
