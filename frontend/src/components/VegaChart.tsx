/** One Vega-Lite spec drawn with vega-embed (loaded on first use: the charts' code stays out of the main bundle). */
import { useEffect, useRef, useState } from "react";
import { useTheme } from "../theme";

export interface ChartItem {
  id: string;
  stage: string;
  title: string;
  description: string;
  spec: Record<string, unknown>;
  kind?: string;
}

export default function VegaChart({ chart }: { chart: ChartItem }) {
  const box = useRef<HTMLDivElement>(null);
  const { theme } = useTheme();
  const [failed, setFailed] = useState<string | null>(null);

  useEffect(() => {
    let finalize: (() => void) | undefined;
    let cancelled = false;
    void (async () => {
      const [{ default: embed }, { expressionInterpreter }] = await Promise.all([
        import("vega-embed"),
        import("vega-interpreter"),
      ]);
      if (cancelled || !box.current) return;
      try {
        // The interpreter evaluates Vega expressions without eval: the UI's CSP has no 'unsafe-eval'.
        const result = await embed(box.current, chart.spec as never, {
          ast: true,
          expr: expressionInterpreter,
          actions: { export: true, source: false, compiled: false, editor: false },
          theme: theme === "dark" ? "dark" : undefined,
          renderer: "svg",
        });
        finalize = () => result.finalize();
      } catch (error) {
        setFailed(error instanceof Error ? error.message : String(error));
      }
    })();
    return () => {
      cancelled = true;
      finalize?.();
    };
  }, [chart.spec, theme]);

  return (
    <figure className="chart" aria-label={chart.title}>
      <figcaption>
        <strong>{chart.title}</strong>
        <span className="muted"> {chart.description}</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${chart.title}: ${chart.description}`} />
      {failed && <p className="error">This chart could not be drawn: {failed}</p>}
    </figure>
  );
}
