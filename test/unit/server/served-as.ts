/**
 * Tests that serve the embedded registry in-process under a made-up name (`tags.test:5000`): the
 * registry answers only to the names it serves (server/site.ts), so they list that one.
 */
import { Site } from '../../../server/site.ts';

/** A Site that serves `authority` (`host:port`) as the origin `http://<authority>`. */
export function servedAs(authority: string): Site {
  return new Site({ publicOrigins: [`http://${authority}`] });
}
