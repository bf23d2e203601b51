/**
 * The embedded registry's tag list, `GET /v2/<name>/tags/list[?n=<n>&last=<tag>]` (end-8a/8b), in
 * lexical order, paginated with a `Link: <…>; rel="next"` header.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
 */
import { DistributionError } from '../errors.ts';
import { json, type RegistryRequest } from '../http.ts';

/** @throws DistributionError NAME_UNKNOWN (404), UNSUPPORTED (400) for an `n` that is no count */
export async function listTags(r: RegistryRequest): Promise<Response> {
  const { name } = r;
  const all = await r.reg.storage.tags(name);
  if (all === undefined) throw new DistributionError('NAME_UNKNOWN', 404, `Repository ${name} is not known here.`);
  const last = r.c.req.query('last');
  const nText = r.c.req.query('n');
  let list = last === undefined ? all : all.filter((t) => t > last);
  let headers: Record<string, string> = {};
  if (nText !== undefined) {
    const n = Number(nText);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new DistributionError('UNSUPPORTED', 400, `n=${nText} is not a number of tags.`);
    }
    if (list.length > n) {
      list = list.slice(0, n);
      const lastShown = list[list.length - 1];
      if (lastShown !== undefined) {
        const next = `${r.location('tags/list')}?n=${n}&last=${encodeURIComponent(lastShown)}`;
        headers = { Link: `<${next}>; rel="next"` };
      }
    }
  }
  return json({ name, tags: list }, 200, headers);
}
