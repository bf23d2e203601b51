/**
 * The layout check of issue #13 for the end-to-end specs: a page state at a width has no sideways
 * scrolling, no element past the viewport (outside a scrolling box), and no axe-core
 * (https://github.com/dequelabs/axe-core) finding at the serious or critical levels; its
 * screenshot is attached to the test (a kept artifact). And `hold`, which keeps a request waiting
 * until released, so that a page's working state stays on screen while it is checked.
 */
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page, type Request, type Route, type TestInfo } from '@playwright/test';

/** The widths every state is checked at: two phones, a tablet, a desktop. */
export const WIDTHS = [360, 390, 768, 1280] as const;

/** The window height used with a width: a phone's 844, else 800. */
export const heightFor = (width: number): number => (width < 700 ? 844 : 800);

/** Elements that stick out past the viewport's right edge and are not inside a scrolling box. */
function overflowing(): { scrollWidth: number; clientWidth: number; wide: string[] } {
  const root = document.documentElement;
  const vw = root.clientWidth;
  const clipped = (el: Element): boolean => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden' || ox === 'clip') return true;
    }
    return false;
  };
  const wide: string[] = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > vw + 1 || r.left < -1) && !clipped(el)) {
      const cls = typeof el.className === 'string' && el.className ? `.${el.className.split(' ').join('.')}` : '';
      wide.push(
        `${el.tagName.toLowerCase()}${cls} [${Math.round(r.left)}–${Math.round(r.right)}] ${(el.textContent ?? '').trim().slice(0, 60)}`,
      );
    }
  }
  return { scrollWidth: root.scrollWidth, clientWidth: vw, wide: wide.slice(0, 10) };
}

/** Checks one state at the page's current width: no sideways scrolling, no serious or critical axe findings; attaches its screenshot. */
export async function checkState(page: Page, info: TestInfo, width: number, state: string): Promise<void> {
  const o = await page.evaluate(overflowing);
  expect.soft(o.wide, `${state} at ${width} px: elements past the viewport`).toEqual([]);
  expect.soft(o.scrollWidth, `${state} at ${width} px: the page scrolls sideways`).toBeLessThanOrEqual(o.clientWidth);
  const axe = await new AxeBuilder({ page }).analyze();
  const bad = axe.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect.soft(bad, `${state} at ${width} px: axe-core findings`).toEqual([]);
  const path = info.outputPath(`${state}-${width}.png`);
  await page.screenshot({ path, fullPage: true });
  await info.attach(`${state}-${width}`, { path, contentType: 'image/png' });
}

/**
 * Checks a state at every width of WIDTHS, resizing the one page (a state that is slow to reach,
 * or held, is reached once); leaves the page at `end` px wide.
 */
export async function checkWidths(page: Page, info: TestInfo, state: string, end = 1280): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: heightFor(width) });
    await checkState(page, info, width, state);
  }
  await page.setViewportSize({ width: end, height: heightFor(end) });
}

/** A request kept waiting: `arrived` settles when the first one comes, `release` lets them all go on. */
export interface Held {
  arrived: Promise<void>;
  release: () => Promise<void>;
}

/**
 * Holds the page's requests to `url` for which `when` says yes until `release` (the others go on
 * at once), so a working state stays on screen for as long as it is looked at: no sleep.
 */
export async function hold(
  page: Page,
  url: string | RegExp,
  when: (r: Request) => boolean = () => true,
): Promise<Held> {
  let open = (): void => undefined;
  const gate = new Promise<void>((r) => (open = r));
  let came = (): void => undefined;
  const arrived = new Promise<void>((r) => (came = r));
  const handler = async (route: Route): Promise<void> => {
    if (!when(route.request())) return route.fallback();
    came();
    await gate;
    // The page may have moved on meanwhile: its request has then nowhere to go.
    await route.fallback().catch(() => undefined);
  };
  await page.route(url, handler);
  return {
    arrived,
    release: async () => {
      open();
      await page.unroute(url, handler);
    },
  };
}
