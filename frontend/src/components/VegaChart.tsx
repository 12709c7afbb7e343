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
  const [svg, setSvg] = useState<(() => Promise<string>) | null>(null);

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
        // The spec's own description names the SVG for screen readers (Vega sets its aria-label).
        const spec = { description: `${chart.title}: ${chart.description}`, ...chart.spec };
        const result = await embed(box.current, spec as never, {
          ast: true,
          expr: expressionInterpreter,
          // vega-embed's own menu is an unnamed <summary>: our download button replaces it.
          actions: false,
          theme: theme === "dark" ? "dark" : undefined,
          renderer: "svg",
        });
        finalize = () => result.finalize();
        setSvg(() => () => result.view.toImageURL("svg"));
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
      <div ref={box} />
      {svg && (
        <button
          type="button"
          className="btn btn-secondary"
          onClick={() =>
            void svg().then((url) => {
              const link = document.createElement("a");
              link.href = url;
              link.download = `${chart.id.replace(/\W+/g, "-")}.svg`;
              link.click();
            })
          }
        >
          Download {chart.title} (SVG)
        </button>
      )}
      {failed && <p className="error">This chart could not be drawn: {failed}</p>}
    </figure>
  );
}
