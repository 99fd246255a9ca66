/* Synthetic patients and clinical prose (data/synth_parts.h).
 *
 * A patient has demographics, one admission reason (the "acute" condition) and
 * up to four chronic ones. Their notes follow one admission: progress notes by
 * hospital day (POD# after surgery), a radiology report, a discharge summary.
 * Labs and vitals start abnormal where the condition says so and drift back to
 * normal by discharge.
 *
 * The text is de-identified the way released notes are: no names, no dates, no
 * places; relative times ("hospital day 3", "2 days prior to admission"),
 * placeholders ("Dr. [**Name**]", "[**Hospital**]"), ages <= 89 exactly and
 * "90+" beyond. It deliberately carries what pattern scanners confuse with
 * identifiers: BP ratios, fishbone lab strings, doses, clock times, ICD-10
 * codes, motor strength 5/5, murmur grades, pain scores, spine levels. */
#include <stdio.h>
#include <string.h>

#include "data/synth_parts.h"

/* ---------------------------------------------------------------- labs --- */

enum {
    L_NA, L_K, L_CL, L_HCO3, L_BUN, L_CR, L_GLU, L_WBC, L_HGB, L_PLT, L_MG, L_LACT, L_BNP,
    L_TROP, L_INR, L_A1C, L_TSH, L_PCT, N_LABS
};

static const struct {
    const char *key, *name, *unit;
    int decimals, lo, hi; /* normal range, scaled by 10^decimals */
} LABS[N_LABS] = {
    {"sodium", "Na", "mmol/L", 0, 135, 144},
    {"potassium", "K", "mmol/L", 1, 35, 49},
    {"chloride", "Cl", "mmol/L", 0, 98, 107},
    {"bicarbonate", "HCO3", "mmol/L", 0, 22, 28},
    {"bun", "BUN", "mg/dL", 0, 8, 20},
    {"creatinine", "Cr", "mg/dL", 1, 6, 11},
    {"glucose", "Glucose", "mg/dL", 0, 78, 118},
    {"wbc", "WBC", "x10^9/L", 1, 45, 102},
    {"hemoglobin", "Hgb", "g/dL", 1, 121, 152},
    {"platelets", "Plt", "x10^9/L", 0, 165, 360},
    {"magnesium", "Mg", "mg/dL", 1, 17, 24},
    {"lactate", "Lactate", "mmol/L", 1, 6, 17},
    {"bnp", "BNP", "pg/mL", 0, 20, 90},
    {"troponin_i", "Troponin I", "ng/mL", 2, 0, 3},
    {"inr", "INR", "", 1, 9, 11},
    {"hba1c", "HbA1c", "%", 1, 49, 56},
    {"tsh", "TSH", "mIU/L", 1, 6, 39},
    {"procalcitonin", "Procalcitonin", "ng/mL", 2, 2, 8},
};

typedef struct {
    int lab, lo, hi;
    int resolves; /* drifts back to normal by discharge */
} lab_tweak;

/* ------------------------------------------------------------- vitals --- */

enum { V_FEVER = 1, V_TACHY = 2, V_HTN = 4, V_TACHYPNEA = 8, V_HYPOXIA = 16, V_HYPOTENSION = 32 };

typedef struct {
    int temp_dc, hr, sbp, dbp, rr, spo2;
    int o2_lpm; /* 0 = room air */
} vitals;

/* ---------------------------------------------------------- conditions --- */

#define V3(a, b, c) {a, b, c}

typedef struct {
    const char *icd, *name, *short_name;
    int surgical, min_age, max_age;
    const char *presentation[3];
    const char *assessment[3];
    const char *plan[3];
    const char *course[2];
    const char *inpatient_meds[4];
    const char *discharge_meds[3];
    const char *procedure;
    const char *study, *indication, *technique;
    const char *findings[2];
    const char *impression[2];
    lab_tweak labs[3];
    int vitals;
    const char *lungs, *abdomen, *extremities; /* exam findings of this condition; NULL = any */
} acute_condition;

static const acute_condition ACUTE[] = {
    {"J18.9", "Community-acquired pneumonia", "CAP", 0, 18, 90,
     V3("3 days of productive cough, fevers to 38.9 C and worsening dyspnea on exertion",
        "1 week of cough with rust-colored sputum, pleuritic R-sided chest pain and chills",
        "fatigue, poor PO intake and new O2 requirement noted by family"),
     V3("Afebrile x24h, O2 requirement improving, WBC downtrending",
        "Clinically improving on abx; still with productive cough but less dyspneic",
        "Tmax 38.1 C overnight, otherwise stable; blood cx NGTD x2 days"),
     V3("Continue ceftriaxone 1 g IV q24h + azithromycin 500 mg PO daily (day %d of 5); "
        "wean O2 to keep SpO2 > 92%%",
        "Transition to PO cefpodoxime 200 mg BID when afebrile 24-48h; incentive spirometry "
        "10x/hr while awake",
        "F/u sputum cx and urine Legionella Ag; ambulatory SpO2 prior to d/c"),
     {"Started on ceftriaxone and azithromycin for CAP with RLL consolidation on CXR. Fevers "
      "resolved by hospital day 2 and O2 was weaned to room air. Transitioned to PO "
      "antibiotics to complete a 5-day course.",
      "Treated with IV ceftriaxone and azithromycin. Blood cultures remained negative. "
      "Ambulatory SpO2 was 94% on RA prior to discharge."},
     {"ceftriaxone 1 g IV q24h", "azithromycin 500 mg PO daily", "guaifenesin 600 mg PO BID",
      "acetaminophen 650 mg PO q6h PRN fever"},
     {"cefpodoxime 200 mg PO BID x 2 more days", "benzonatate 100 mg PO TID PRN cough",
      "acetaminophen 650 mg PO q6h PRN"},
     NULL, "Chest radiograph, PA and lateral", "cough, fever and hypoxia",
     "Frontal and lateral views of the chest",
     {"Dense consolidation in the right lower lobe with air bronchograms. No pleural effusion. "
      "Heart size is normal.",
      "Patchy opacity in the left lower lobe, partially obscuring the hemidiaphragm. Trace "
      "left pleural effusion. No pneumothorax."},
     {"Right lower lobe pneumonia", "Left lower lobe opacity, likely pneumonia in the "
      "appropriate clinical setting; follow-up radiograph in 6-8 weeks to document resolution"},
     {{L_WBC, 142, 186, 1}, {L_PCT, 55, 240, 1}, {L_LACT, 12, 24, 1}},
     V_FEVER | V_TACHY | V_TACHYPNEA | V_HYPOXIA,
     "Crackles and bronchial breath sounds at the R base", NULL, NULL},

    {"I50.23", "Acute on chronic systolic heart failure", "ADHF", 0, 45, 90,
     V3("2 weeks of progressive dyspnea on exertion, 3-pillow orthopnea and an 8 lb weight gain",
        "worsening bilateral leg swelling and PND after running out of furosemide 1 week ago",
        "acute dyspnea at rest; EMS found SpO2 86% on RA and started CPAP"),
     V3("Net negative 1.8 L in the past 24h; weight down 1.2 kg; breathing more comfortably",
        "Diuresing well on IV furosemide; Cr stable; orthopnea improved to 1 pillow",
        "Still volume up on exam with JVP to the angle of the jaw; UOP adequate"),
     V3("Continue furosemide 40 mg IV BID, goal net -1 to -2 L/day; strict I/O, daily weights",
        "Transition to torsemide 20 mg PO daily tomorrow if euvolemic; resume carvedilol "
        "6.25 mg BID",
        "BMP BID while diuresing; replete K to > 4.0 and Mg to > 2.0; 2 g Na diet, 1.5 L fluid "
        "restriction"),
     {"Diuresed with IV furosemide with net negative 6 L over the admission and weight down "
      "5.4 kg. Transitioned to oral torsemide with stable renal function.",
      "Presented in decompensated HF in the setting of dietary indiscretion. Echo showed EF "
      "30-35%, unchanged from prior. Euvolemic at discharge on an oral diuretic."},
     {"furosemide 40 mg IV BID", "carvedilol 6.25 mg PO BID", "sacubitril-valsartan 24-26 mg "
      "PO BID", "potassium chloride 20 mEq PO daily"},
     {"torsemide 20 mg PO daily", "carvedilol 6.25 mg PO BID",
      "spironolactone 12.5 mg PO daily"},
     NULL, "Transthoracic echocardiogram", "dyspnea and volume overload",
     "Complete 2D, color and spectral Doppler study",
     {"Dilated left ventricle with global hypokinesis. Estimated LVEF 30-35%. Moderate mitral "
      "regurgitation. Estimated RVSP 48 mmHg.",
      "Severely reduced LV systolic function, LVEF 25-30%. Grade II diastolic dysfunction. "
      "Dilated IVC with less than 50% inspiratory collapse."},
     {"Reduced LVEF of 30-35% with global hypokinesis, unchanged from the prior study",
      "Severe LV systolic dysfunction with elevated filling pressures"},
     {{L_BNP, 780, 2450, 1}, {L_NA, 128, 133, 1}, {L_CR, 12, 17, 0}},
     V_HTN | V_TACHYPNEA | V_HYPOXIA,
     "Crackles at bilateral bases", NULL, "2+ pitting edema bilateral LE to the knees"},

    {"J44.1", "COPD with acute exacerbation", "AECOPD", 0, 45, 90,
     V3("4 days of increased sputum purulence and wheezing despite albuterol q2h at home",
        "worsening dyspnea after a viral URI, with audible wheezing and accessory muscle use",
        "increased cough and dyspnea; home O2 increased from 2 L to 4 L by family"),
     V3("Wheezing improved; now on home O2 of 2 L NC", "Less dyspneic, able to speak in full "
        "sentences; still with scattered wheezes", "Slowly improving; ambulated 150 ft on 3 L NC"),
     V3("Continue prednisone 40 mg PO daily (day %d of 5) and duonebs q4h, albuterol q2h PRN",
        "Doxycycline 100 mg PO BID x5 days; titrate O2 to SpO2 88-92%%",
        "Pulmonary rehab referral; review inhaler technique before d/c"),
     {"Treated with systemic steroids, scheduled nebulizers and doxycycline with gradual "
      "improvement. Weaned to home O2 of 2 L NC.",
      "Exacerbation likely triggered by a viral infection. Completed prednisone burst and was "
      "back to baseline O2 requirement at discharge."},
     {"prednisone 40 mg PO daily", "ipratropium-albuterol nebs q4h", "doxycycline 100 mg PO "
      "BID", "albuterol nebs q2h PRN wheezing"},
     {"prednisone 40 mg PO daily x 2 more days", "tiotropium 18 mcg inhaled daily",
      "albuterol MDI 2 puffs q4h PRN"},
     NULL, "Chest radiograph, portable AP", "dyspnea and wheezing", "Single portable AP view",
     {"Hyperinflated lungs with flattened hemidiaphragms. No focal consolidation, effusion or "
      "pneumothorax.",
      "Emphysematous changes. Mild bibasilar atelectasis. Cardiomediastinal silhouette within "
      "normal limits."},
     {"Hyperinflation consistent with COPD; no acute cardiopulmonary process",
      "Emphysema without focal consolidation"},
     {{L_WBC, 108, 135, 1}, {L_HCO3, 30, 35, 0}, {L_GLU, 150, 230, 1}},
     V_TACHY | V_TACHYPNEA | V_HYPOXIA,
     "Diffuse expiratory wheezes, prolonged expiratory phase", NULL, NULL},

    {"N17.9", "Acute kidney injury", "AKI", 0, 30, 90,
     V3("poor PO intake and diarrhea for 5 days while continuing lisinopril and ibuprofen",
        "decreased urine output and lightheadedness after a week of vomiting",
        "an elevated creatinine on routine labs at the PCP office, up from a baseline of 0.9"),
     V3("Cr improving with IVF; UOP 1.2 L over 24h", "Cr plateaued; urine lytes c/w prerenal "
        "etiology", "Renal function back toward baseline; tolerating PO"),
     V3("Continue LR at 100 mL/hr x 1 L more, then reassess; hold lisinopril and NSAIDs",
        "Renal US without hydronephrosis; avoid nephrotoxins, renally dose meds", "Trend BMP "
        "daily; strict I/O; bladder scan q6h PRN"),
     {"Prerenal AKI from volume depletion and ACE inhibitor/NSAID use. Improved with IV fluids; "
      "creatinine trended down to near baseline.",
      "Renal ultrasound was unremarkable. Nephrotoxic medications were held and renal function "
      "recovered over 3 days."},
     {"lactated Ringer's 100 mL/hr IV", "ondansetron 4 mg IV q8h PRN", "heparin 5000 units SC "
      "q8h", "acetaminophen 650 mg PO q6h PRN"},
     {"hold lisinopril until PCP follow-up", "avoid NSAIDs", "acetaminophen 650 mg PO q6h PRN"},
     NULL, "Renal ultrasound", "acute kidney injury", "Grayscale and color Doppler images of "
     "both kidneys and the bladder",
     {"Right kidney 10.8 cm, left kidney 11.2 cm. Normal cortical echogenicity. No "
      "hydronephrosis, stones or masses. Bladder is decompressed.",
      "Kidneys are normal in size with mildly increased cortical echogenicity. No "
      "hydronephrosis. Simple 1.2 cm cyst in the left lower pole."},
     {"No hydronephrosis", "Mildly echogenic kidneys, suggesting medical renal disease; no "
      "obstruction"},
     {{L_CR, 21, 38, 1}, {L_BUN, 38, 72, 1}, {L_K, 51, 58, 1}},
     V_TACHY | V_HYPOTENSION, NULL, NULL, NULL},

    {"N10", "Acute pyelonephritis", "Pyelo", 0, 18, 85,
     V3("2 days of dysuria, R flank pain, fevers and rigors", "fever to 39.2 C, L CVA "
        "tenderness and vomiting", "urinary frequency followed by flank pain and chills"),
     V3("Afebrile since hospital day 2; flank pain improving", "Tolerating PO; urine cx "
        "growing pan-sensitive E. coli", "Still with low-grade temps; CT without abscess"),
     V3("Continue ceftriaxone 1 g IV q24h, narrow per sensitivities", "Transition to PO "
        "cephalexin 500 mg QID to complete 10-14 days", "Ondansetron PRN; encourage PO fluids"),
     {"Urine culture grew E. coli sensitive to cephalosporins. Treated with IV ceftriaxone, then "
      "oral therapy to complete a 10-day course.",
      "Fevers resolved within 48h of antibiotics. CT showed no abscess or obstruction."},
     {"ceftriaxone 1 g IV q24h", "ondansetron 4 mg IV q8h PRN nausea", "ketorolac 15 mg IV "
      "q6h PRN pain x 48h", "acetaminophen 650 mg PO q6h PRN"},
     {"cephalexin 500 mg PO QID x 7 more days", "acetaminophen 650 mg PO q6h PRN",
      "ondansetron 4 mg PO q8h PRN"},
     NULL, "CT abdomen and pelvis with IV contrast", "fever and flank pain",
     "Axial images from the lung bases through the pelvis after IV contrast",
     {"Striated nephrogram of the right kidney with mild perinephric stranding. No "
      "hydronephrosis, calculus or abscess.",
      "Wedge-shaped areas of hypoenhancement in the left kidney. No renal or perinephric "
      "collection. Normal appendix."},
     {"Findings consistent with right pyelonephritis without abscess",
      "Left pyelonephritis; no drainable collection"},
     {{L_WBC, 135, 178, 1}, {L_CR, 11, 15, 1}, {L_LACT, 14, 23, 1}},
     V_FEVER | V_TACHY, NULL, NULL, NULL},

    {"L03.116", "Cellulitis of left lower limb", "LLE cellulitis", 0, 18, 90,
     V3("3 days of spreading erythema, warmth and pain of the L shin after a minor abrasion",
        "L leg redness and swelling with fevers, failing 48h of outpatient cephalexin",
        "painful L calf erythema; DVT ruled out by duplex in the ED"),
     V3("Erythema receding from marked borders; afebrile", "Pain improved, now 3/10; edema "
        "decreasing with elevation", "Slower improvement; no fluctuance on exam"),
     V3("Continue cefazolin 2 g IV q8h; add doxycycline 100 mg BID for MRSA coverage if "
        "purulent", "Transition to PO cephalexin 500 mg QID x 5-10 days total", "Elevate LLE, "
        "wound care consult for the abrasion; compression once improved"),
     {"Treated with IV cefazolin with steady regression of erythema from marked borders. "
      "Transitioned to oral cephalexin.",
      "Lower extremity duplex was negative for DVT. Cellulitis improved with IV antibiotics "
      "and elevation."},
     {"cefazolin 2 g IV q8h", "enoxaparin 40 mg SC daily", "oxycodone 5 mg PO q4h PRN severe "
      "pain", "acetaminophen 1000 mg PO q8h"},
     {"cephalexin 500 mg PO QID x 5 more days", "acetaminophen 1000 mg PO q8h PRN",
      "mupirocin 2% ointment to abrasion BID"},
     NULL, "Left lower extremity venous duplex ultrasound", "leg swelling and erythema",
     "Grayscale, compression and Doppler images of the left lower extremity deep veins",
     {"Normal compressibility of the common femoral, femoral and popliteal veins. Normal flow "
      "and augmentation. Subcutaneous edema in the calf.",
      "No intraluminal thrombus. Phasic flow in the common femoral vein. Soft tissue edema "
      "without a discrete fluid collection."},
     {"No deep venous thrombosis of the left lower extremity", "No DVT; subcutaneous edema "
      "without abscess"},
     {{L_WBC, 118, 152, 1}, {L_GLU, 120, 190, 1}, {L_CR, 9, 12, 0}},
     V_FEVER | V_TACHY, NULL, NULL, "L shin erythema and warmth, receding from marked borders"},

    {"I48.91", "Atrial fibrillation with rapid ventricular response", "AF with RVR", 0, 40, 90,
     V3("palpitations and lightheadedness; ECG in the ED showed AF with rates in the 140s",
        "new-onset palpitations and dyspnea after missing 3 days of metoprolol",
        "fatigue and chest tightness with HR 150 on a home pulse oximeter"),
     V3("Rate controlled, HR 70s-90s on tele", "Converted to sinus rhythm overnight",
        "Intermittent RVR to the 120s with exertion"),
     V3("Metoprolol tartrate 50 mg PO q6h, consolidate to succinate 200 mg daily before d/c",
        "CHA2DS2-VASc %d; start apixaban 5 mg BID after discussion of risks and benefits",
        "TSH within normal limits; TTE to assess LA size and LVEF"),
     {"Rate controlled with IV then oral metoprolol. Started on apixaban for stroke "
      "prevention. TTE showed preserved EF and mild LA enlargement.",
      "Spontaneously converted to sinus rhythm on hospital day 2. Anticoagulation started given "
      "an elevated CHA2DS2-VASc score."},
     {"metoprolol tartrate 50 mg PO q6h", "apixaban 5 mg PO BID", "diltiazem 10 mg IV q4h PRN "
      "HR > 120", "magnesium sulfate 2 g IV x1"},
     {"metoprolol succinate 200 mg PO daily", "apixaban 5 mg PO BID",
      "cardiology clinic follow-up for rhythm strategy"},
     NULL, "Transthoracic echocardiogram", "atrial fibrillation with RVR",
     "Limited 2D and Doppler study during sinus rhythm",
     {"Normal LV size with LVEF 55-60%. Mild left atrial enlargement. No significant valvular "
      "disease. No pericardial effusion.",
      "LVEF 50-55% with mildly reduced global longitudinal strain. Moderate biatrial "
      "enlargement. Mild tricuspid regurgitation."},
     {"Preserved LVEF with mild left atrial enlargement", "Low-normal LVEF and biatrial "
      "enlargement"},
     {{L_TROP, 2, 9, 1}, {L_MG, 15, 17, 1}, {L_TSH, 9, 35, 0}},
     V_TACHY, NULL, NULL, NULL},

    {"A41.9", "Sepsis due to urinary tract infection", "Urosepsis", 0, 30, 90,
     V3("confusion, fever to 39.4 C and hypotension to the 80s systolic at the nursing facility",
        "rigors, dysuria and SBP 84 in the ED, improving after 30 mL/kg of LR",
        "lethargy and foul-smelling urine noted by family, with fever and tachycardia"),
     V3("Off pressors for 24h; mentation back to baseline", "Lactate cleared; urine cx with "
        "Klebsiella, sensitivities pending", "Hemodynamically stable; still with low-grade "
        "fevers"),
     V3("Continue cefepime 2 g IV q12h, de-escalate per sensitivities", "MAP goal > 65; "
        "maintenance IVF stopped, encourage PO", "Repeat blood cx x2 until negative; "
        "Foley removed on hospital day %d"),
     {"Admitted to the ICU for septic shock requiring norepinephrine for 18h. Source was "
      "urinary; cultures grew Klebsiella pneumoniae. Narrowed to ceftriaxone.",
      "Treated with IV fluids and broad-spectrum antibiotics. Lactate normalized and mentation "
      "returned to baseline by hospital day 3."},
     {"cefepime 2 g IV q12h", "lactated Ringer's 125 mL/hr IV", "heparin 5000 units SC q8h",
      "acetaminophen 650 mg PO q6h PRN fever"},
     {"cefpodoxime 200 mg PO BID x 5 more days", "acetaminophen 650 mg PO q6h PRN",
      "hold amlodipine until PCP follow-up"},
     NULL, "CT abdomen and pelvis with IV contrast", "sepsis with a urinary source",
     "Axial images from the lung bases through the pelvis after IV contrast",
     {"Bladder wall thickening with perivesical stranding. Mild bilateral perinephric "
      "stranding. No hydronephrosis or obstructing stone.",
      "Bilateral striated nephrograms. Foley catheter in a decompressed bladder. No abscess."},
     {"Cystitis with possible ascending pyelonephritis; no obstruction",
      "Bilateral pyelonephritis without abscess"},
     {{L_LACT, 28, 52, 1}, {L_WBC, 165, 225, 1}, {L_CR, 14, 22, 1}},
     V_FEVER | V_TACHY | V_HYPOTENSION | V_TACHYPNEA, NULL, NULL, NULL},

    {"K92.2", "Gastrointestinal hemorrhage", "GIB", 0, 35, 90,
     V3("2 days of melena and presyncope while taking naproxen for back pain",
        "coffee-ground emesis and lightheadedness on standing",
        "fatigue and black stools; Hgb 6.9 on outpatient labs"),
     V3("Hgb stable x3 checks after 2 units PRBC", "EGD with a clean-based duodenal ulcer; no "
        "further melena", "Tolerating clear liquids; hemodynamically stable"),
     V3("Pantoprazole 40 mg IV BID, transition to PO BID x8 weeks", "Hgb q12h, transfuse for "
        "Hgb < 7; active type and screen", "H. pylori serology pending; avoid NSAIDs"),
     {"EGD on hospital day 2 showed a clean-based duodenal ulcer. Transfused 2 units PRBC. "
      "Hemoglobin remained stable on a PPI.",
      "Upper GI bleed from NSAID-associated gastritis. Treated with IV PPI; no further bleeding "
      "after hospital day 1."},
     {"pantoprazole 40 mg IV BID", "ondansetron 4 mg IV q8h PRN", "ferrous sulfate 325 mg PO "
      "daily", "SCDs for DVT prophylaxis"},
     {"pantoprazole 40 mg PO BID x 8 weeks", "ferrous sulfate 325 mg PO daily",
      "avoid NSAIDs, including naproxen and ibuprofen"},
     NULL, "CT angiography of the abdomen and pelvis", "GI bleeding",
     "Arterial and portal venous phase images after IV contrast",
     {"No active contrast extravasation into the bowel lumen. Mild duodenal wall thickening. "
      "Sigmoid diverticulosis without diverticulitis.",
      "No active extravasation. Small hiatal hernia. Normal caliber mesenteric vessels."},
     {"No active GI bleeding at the time of the study", "No active extravasation; duodenal wall "
      "thickening could reflect duodenitis"},
     {{L_HGB, 64, 82, 1}, {L_BUN, 32, 58, 1}, {L_PLT, 150, 220, 0}},
     V_TACHY | V_HYPOTENSION, NULL, "Soft, mild epigastric tenderness, no guarding", NULL},

    {"E10.10", "Type 1 diabetes mellitus with ketoacidosis", "DKA", 0, 18, 60,
     V3("polyuria, polydipsia, vomiting and abdominal pain after 2 days of missed insulin",
        "nausea, Kussmaul breathing and a fingerstick reading of HI on the home meter",
        "abdominal pain and confusion in the setting of a viral illness"),
     V3("Anion gap closed; transitioned to SC insulin", "Tolerating a carb-controlled diet; "
        "no further emesis", "Fingersticks 140s-210s on the basal-bolus regimen"),
     V3("Insulin glargine 22 units qHS + lispro 6 units TID AC plus correction scale",
        "BMP q4h until the gap is closed x2; replete K per protocol", "Diabetes educator and "
        "endocrine consult; review sick-day rules"),
     {"Treated per the DKA protocol with an insulin infusion and IV fluids. Anion gap closed "
      "within 14h and the patient was transitioned to basal-bolus insulin.",
      "DKA precipitated by missed insulin doses. Gap closed on hospital day 1. Seen by the "
      "diabetes educator before discharge."},
     {"insulin regular infusion per DKA protocol", "insulin glargine 22 units SC qHS",
      "insulin lispro 6 units SC TID AC", "potassium chloride 20 mEq IV per protocol"},
     {"insulin glargine 22 units SC qHS", "insulin lispro 6 units SC TID with meals plus "
      "correction scale", "glucagon 1 mg kit for hypoglycemia"},
     NULL, "Chest radiograph, portable AP", "DKA, rule out infection", "Single portable AP view",
     {"Clear lungs. No focal consolidation, effusion or pneumothorax. Normal heart size.",
      "Low lung volumes with mild bibasilar atelectasis. No consolidation."},
     {"No acute cardiopulmonary process", "Low lung volumes without pneumonia"},
     {{L_GLU, 380, 620, 1}, {L_HCO3, 8, 15, 1}, {L_K, 52, 61, 1}},
     V_TACHY | V_TACHYPNEA, NULL, NULL, NULL},

    {"K35.80", "Acute appendicitis", "Appendicitis", 1, 18, 70,
     V3("24h of periumbilical pain migrating to the RLQ with anorexia and a low-grade fever",
        "RLQ pain, nausea and one episode of emesis; CT showed a dilated appendix",
        "sudden worsening of RLQ pain after 2 days of vague abdominal discomfort"),
     V3("Pain well controlled, 2/10; tolerating a regular diet", "Ambulating; +flatus, no BM "
        "yet", "Mild incisional pain; port sites c/d/i"),
     V3("Advance diet as tolerated; multimodal analgesia with acetaminophen and ketorolac",
        "Incentive spirometry; ambulate TID; d/c home today if tolerating PO",
        "No postoperative antibiotics needed for non-perforated appendicitis"),
     {"Underwent an uncomplicated laparoscopic appendectomy on hospital day 1. Pathology showed "
      "acute appendicitis without perforation. Advanced to a regular diet on POD#1.",
      "Taken to the OR for laparoscopic appendectomy. Recovered without complication and was "
      "discharged once tolerating a diet with pain controlled on oral agents."},
     {"acetaminophen 1000 mg PO q8h", "ketorolac 15 mg IV q6h x 48h", "oxycodone 5 mg PO q4h "
      "PRN severe pain", "enoxaparin 40 mg SC daily"},
     {"acetaminophen 1000 mg PO q8h PRN", "ibuprofen 600 mg PO q6h PRN with food",
      "oxycodone 5 mg PO q6h PRN severe pain, #6, no refills"},
     "laparoscopic appendectomy", "CT abdomen and pelvis with IV contrast", "RLQ pain",
     "Axial images from the lung bases through the pelvis after IV contrast",
     {"Dilated appendix measuring 11 mm with wall hyperenhancement and periappendiceal fat "
      "stranding. Appendicolith at the base. No free air or abscess.",
      "Fluid-filled appendix measuring 9 mm with surrounding inflammatory change. Small amount "
      "of free fluid in the pelvis."},
     {"Acute appendicitis without perforation or abscess", "Findings consistent with acute "
      "uncomplicated appendicitis"},
     {{L_WBC, 128, 168, 1}, {L_HGB, 118, 140, 0}, {L_GLU, 100, 140, 1}},
     V_FEVER | V_TACHY, NULL, "Soft, appropriately tender near port sites, incisions c/d/i", NULL},

    {"S72.001A", "Fracture of right femoral neck", "R femoral neck fx", 1, 65, 90,
     V3("a mechanical fall at home with inability to bear weight and a shortened, externally "
        "rotated RLE",
        "R hip pain after tripping on a rug; unable to stand without assistance",
        "a fall from standing with R groin pain; no head strike or LOC"),
     V3("Pain controlled, working with PT; WBAT RLE", "Mild post-op delirium overnight, "
        "improved this AM", "Ambulated 20 ft with a walker and 1 assist"),
     V3("Enoxaparin 40 mg SC daily x 4 weeks for VTE prophylaxis", "Bowel regimen with senna "
        "and docusate; delirium precautions", "PT/OT daily; dispo to SNF vs acute rehab pending "
        "PT recs"),
     {"Underwent R hip hemiarthroplasty on hospital day 1 without complication. Post-operative "
      "course notable for mild delirium that resolved with non-pharmacologic measures.",
      "Orthopedics performed a hemiarthroplasty. Worked with PT and was discharged to a skilled "
      "nursing facility for rehabilitation."},
     {"enoxaparin 40 mg SC daily", "acetaminophen 1000 mg PO q8h", "oxycodone 2.5 mg PO q4h "
      "PRN", "senna 8.6 mg PO BID"},
     {"enoxaparin 40 mg SC daily x 4 weeks", "acetaminophen 1000 mg PO q8h",
      "calcium carbonate-vitamin D 600 mg-400 units PO BID"},
     "R hip hemiarthroplasty", "Radiograph of the right hip and pelvis", "fall with hip pain",
     "AP pelvis and two views of the right hip",
     {"Subcapital fracture of the right femoral neck with superior displacement of the femoral "
      "shaft. Diffuse osteopenia.",
      "Displaced right femoral neck fracture. No dislocation. Degenerative changes of the lower "
      "lumbar spine at L4-L5."},
     {"Displaced right femoral neck fracture", "Right subcapital femoral neck fracture"},
     {{L_HGB, 88, 108, 0}, {L_WBC, 105, 128, 1}, {L_CR, 10, 14, 0}},
     V_TACHY | V_HTN, NULL, NULL, "R hip dressing c/d/i, RLE neurovascularly intact"},

    {"I26.99", "Acute pulmonary embolism", "PE", 0, 25, 90,
     V3("acute pleuritic chest pain and dyspnea 2 weeks after a long car trip",
        "syncope at home with tachycardia and hypoxia; CTA showed segmental PEs",
        "1 week of exertional dyspnea and L calf swelling"),
     V3("HR improved to the 90s; O2 weaned to RA", "Tolerating apixaban; no bleeding",
        "Still with pleuritic pain, controlled with acetaminophen"),
     V3("Apixaban 10 mg BID x7 days, then 5 mg BID for at least 3 months", "Age-appropriate "
        "cancer screening; thrombophilia workup not indicated", "Ambulate; LE duplex showed "
        "L popliteal DVT"),
     {"CTA showed bilateral segmental pulmonary emboli without RV strain. Treated with heparin "
      "infusion, then apixaban.",
      "Submassive PE ruled out by echo and troponin. Transitioned to oral anticoagulation on "
      "hospital day 2."},
     {"heparin infusion per weight-based nomogram", "apixaban 10 mg PO BID", "acetaminophen "
      "650 mg PO q6h PRN pain", "docusate 100 mg PO BID"},
     {"apixaban 10 mg PO BID x 5 more days, then 5 mg PO BID",
      "acetaminophen 650 mg PO q6h PRN", "compression stockings"},
     NULL, "CT angiography of the chest", "dyspnea and pleuritic chest pain",
     "Axial images during pulmonary arterial phase contrast",
     {"Filling defects in segmental branches of the right lower lobe and left upper lobe "
      "pulmonary arteries. RV/LV ratio 0.8. No infarct.",
      "Saddle-free bilateral lobar and segmental emboli. RV/LV ratio 1.1 with mild "
      "straightening of the septum."},
     {"Bilateral segmental pulmonary emboli without CT evidence of right heart strain",
      "Bilateral pulmonary emboli with borderline right heart strain"},
     {{L_TROP, 2, 8, 1}, {L_BNP, 60, 240, 1}, {L_PLT, 150, 300, 0}},
     V_TACHY | V_TACHYPNEA | V_HYPOXIA, NULL, NULL, NULL},

    {"I21.4", "Non-ST elevation myocardial infarction", "NSTEMI", 0, 40, 90,
     V3("substernal chest pressure radiating to the L arm for 2h, relieved by nitroglycerin",
        "exertional chest tightness for 3 days, now at rest", "dyspnea and diaphoresis; "
        "troponin rising on serial checks"),
     V3("Chest pain free on heparin gtt; troponin peaked at 2.84", "s/p LHC with DES to the mid "
        "LAD; R radial site without hematoma", "No recurrent angina; ambulating without "
        "symptoms"),
     V3("Aspirin 81 mg daily + ticagrelor 90 mg BID for 12 months", "Atorvastatin 80 mg qHS; "
        "metoprolol succinate 25 mg daily", "Cardiac rehab referral; TTE for LVEF"),
     {"Troponin peaked on hospital day 2. Left heart catheterization showed a 90% mid-LAD "
      "lesion treated with a drug-eluting stent.",
      "Medically managed with heparin, aspirin and a high-intensity statin before cath. "
      "Discharged on dual antiplatelet therapy."},
     {"heparin infusion per ACS nomogram", "aspirin 81 mg PO daily", "atorvastatin 80 mg PO "
      "qHS", "nitroglycerin 0.4 mg SL q5min PRN chest pain"},
     {"aspirin 81 mg PO daily", "ticagrelor 90 mg PO BID", "atorvastatin 80 mg PO qHS"},
     NULL, "Transthoracic echocardiogram", "NSTEMI", "Complete 2D and Doppler study",
     {"Hypokinesis of the mid and apical anterior wall. LVEF 45-50%. No LV thrombus. Trace "
      "mitral regurgitation.",
      "Normal LV size. LVEF 50%. Apical hypokinesis. No pericardial effusion."},
     {"Mildly reduced LVEF with an anterior wall motion abnormality in the LAD territory",
      "Low-normal LVEF with apical hypokinesis"},
     {{L_TROP, 85, 284, 1}, {L_GLU, 120, 180, 1}, {L_HGB, 122, 145, 0}},
     V_TACHY | V_HTN, NULL, NULL, NULL},
};
#define N_ACUTE ((int)(sizeof ACUTE / sizeof ACUTE[0]))

typedef struct {
    const char *icd, *name, *abbr, *plan[2], *med;
    lab_tweak lab;
} chronic_condition;

static const chronic_condition CHRONIC[] = {
    {"I10", "Essential hypertension", "HTN",
     {"BP at goal; continue amlodipine 5 mg daily", "BP 140s-150s; resume home lisinopril 10 mg "
      "daily once Cr stable"}, "amlodipine 5 mg PO daily", {-1, 0, 0, 0}},
    {"E11.9", "Type 2 diabetes mellitus", "T2DM",
     {"Hold metformin while inpatient; insulin lispro correction scale AC/HS",
      "FSBG 140s-220s; add glargine 10 units qHS if persistently > 180"},
     "metformin 500 mg PO BID", {L_A1C, 72, 104, 0}},
    {"E78.5", "Hyperlipidemia", "HLD", {"Continue atorvastatin 40 mg qHS", "Continue statin"},
     "atorvastatin 40 mg PO qHS", {-1, 0, 0, 0}},
    {"N18.31", "Chronic kidney disease, stage 3a", "CKD 3a",
     {"Cr at baseline of 1.4-1.6; renally dose meds", "Avoid nephrotoxins and IV contrast when "
      "possible"}, "sodium bicarbonate 650 mg PO BID", {L_CR, 14, 17, 0}},
    {"E03.9", "Hypothyroidism", "Hypothyroidism",
     {"Continue levothyroxine 75 mcg daily", "TSH mildly elevated; recheck in 6 weeks"},
     "levothyroxine 75 mcg PO daily", {L_TSH, 42, 78, 0}},
    {"I25.10", "Coronary artery disease", "CAD",
     {"No anginal symptoms; continue aspirin and statin", "Continue aspirin 81 mg daily"},
     "aspirin 81 mg PO daily", {-1, 0, 0, 0}},
    {"K21.9", "Gastroesophageal reflux disease", "GERD",
     {"Continue omeprazole 20 mg daily", "Symptoms controlled on PPI"},
     "omeprazole 20 mg PO daily", {-1, 0, 0, 0}},
    {"F32.A", "Depression", "Depression",
     {"Mood stable; continue sertraline 50 mg daily", "Continue home SSRI; SW following"},
     "sertraline 50 mg PO daily", {-1, 0, 0, 0}},
    {"G47.33", "Obstructive sleep apnea", "OSA",
     {"CPAP qHS with home settings", "Continue nightly CPAP"}, "CPAP at 10 cm H2O qHS",
     {-1, 0, 0, 0}},
    {"E66.9", "Obesity", "Obesity",
     {"BMI 34; nutrition consult", "Weight-loss counseling at PCP follow-up"}, NULL,
     {-1, 0, 0, 0}},
    {"I48.20", "Chronic atrial fibrillation", "Chronic AF",
     {"Rate controlled; continue home anticoagulation", "Continue diltiazem ER 180 mg daily"},
     "diltiazem ER 180 mg PO daily", {L_INR, 19, 28, 0}},
    {"J44.9", "Chronic obstructive pulmonary disease", "COPD",
     {"Continue home tiotropium; albuterol PRN", "At baseline on 2 L home O2"},
     "tiotropium 18 mcg inhaled daily", {L_HCO3, 28, 32, 0}},
};
#define N_CHRONIC ((int)(sizeof CHRONIC / sizeof CHRONIC[0]))

static int count(const char *const *v, int max) {
    int n = 0;
    while (n < max && v[n]) n++;
    return n;
}

static const char *pick_of(synth_rng *r, const char *const *v, int max) {
    int n = count(v, max);
    return n ? v[synth_rng_below(r, (uint32_t)n)] : "";
}
#define PICK_OF(r, arr) pick_of((r), (arr), (int)(sizeof(arr) / sizeof((arr)[0])))

/* ------------------------------------------------------------ patients --- */

static const struct {
    const char *band;
    int lo, hi, weight;
} AGE_BANDS[] = {{"18-29", 18, 29, 8},  {"30-39", 30, 39, 10}, {"40-49", 40, 49, 13},
                 {"50-59", 50, 59, 17}, {"60-69", 60, 69, 20}, {"70-79", 70, 79, 17},
                 {"80-89", 80, 89, 10}, {"90+", 90, 90, 5}};

static const struct {
    const char *label;
    int weight;
} RACE[] = {{"White", 58}, {"Black", 14}, {"Hispanic", 18}, {"Asian", 7}, {"Other", 3}};

static int weighted(synth_rng *r, const int *w, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) total += w[i];
    int x = (int)synth_rng_below(r, (uint32_t)total);
    for (int i = 0; i < n; i++)
        if ((x -= w[i]) < 0) return i;
    return n - 1;
}

void synth_patient_make(synth_patient *p, int64_t id, synth_rng *r) {
    memset(p, 0, sizeof *p);
    p->id = id;
    p->female = synth_rng_chance(r, 52);
    int w[8];
    for (int i = 0; i < 8; i++) w[i] = AGE_BANDS[i].weight;
    int band = weighted(r, w, 8);
    p->age = synth_rng_range(r, AGE_BANDS[band].lo, AGE_BANDS[band].hi);
    p->age_band = AGE_BANDS[band].band;
    for (int i = 0; i < 5; i++) w[i] = RACE[i].weight;
    p->race_ethnicity = RACE[weighted(r, w, 5)].label;
    if (p->age >= 65) p->payer = synth_rng_chance(r, 88) ? "Medicare" : "Commercial";
    else {
        static const char *const payers[] = {"Commercial", "Commercial", "Commercial",
                                             "Medicaid", "Medicaid", "Self-pay", "Medicare"};
        p->payer = SYNTH_PICK(r, payers);
    }
    /* an admission reason compatible with the age (DKA young, hip fracture old) */
    do p->acute = (int)synth_rng_below(r, N_ACUTE);
    while (p->age < ACUTE[p->acute].min_age || p->age > ACUTE[p->acute].max_age);
    int max_chronic = p->age < 40 ? 1 : p->age < 65 ? 3 : SYNTH_MAX_COMORBID;
    int n = synth_rng_range(r, p->age < 40 ? 0 : 1, max_chronic);
    for (int i = 0; i < n; i++) {
        int c = (int)synth_rng_below(r, N_CHRONIC), dup = 0;
        for (int j = 0; j < p->n_chronic; j++) dup |= p->chronic[j] == c;
        if (!dup) p->chronic[p->n_chronic++] = c;
    }
    p->los = synth_rng_range(r, 2, 6);
    p->weight_dkg = p->female ? synth_rng_range(r, 480, 1050) : synth_rng_range(r, 580, 1250);
}

/* ------------------------------------------------------------ phrases --- */

/* "67-year-old woman", "67 yo F", "an elderly woman (age 90+)". Ages above 89
 * appear only as Safe Harbor's aggregate. */
static void age_phrase(synth_sb *b, const synth_patient *p, synth_rng *r) {
    const char *noun = p->female ? "woman" : "man", *letter = p->female ? "F" : "M";
    if (p->age >= 90) {
        switch (synth_rng_below(r, 3)) {
        case 0: sb_put(b, "elderly %s (age 90+)", noun); break;
        case 1: sb_put(b, "%s aged 90 or older", noun); break;
        default: sb_put(b, "90+ y/o %s", letter); break;
        }
        return;
    }
    switch (synth_rng_below(r, 4)) {
    case 0: sb_put(b, "%d-year-old %s", p->age, noun); break;
    case 1: sb_put(b, "%d yo %s", p->age, letter); break;
    case 2: sb_put(b, "%d y/o %s", p->age, p->female ? "female" : "male"); break;
    default: sb_put(b, "%d-year-old %s", p->age, p->female ? "female" : "male"); break;
    }
}

static void pmh_phrase(synth_sb *b, const synth_patient *p) {
    if (!p->n_chronic) {
        sb_put(b, "no significant PMH");
        return;
    }
    sb_put(b, "PMH of ");
    for (int i = 0; i < p->n_chronic; i++)
        sb_put(b, "%s%s", i == 0 ? "" : i + 1 == p->n_chronic ? " and " : ", ",
               CHRONIC[p->chronic[i]].abbr);
}

/* a 24-hour clock time, "06:35"; night: 22:00-05:55 */
static void clock_at(char out[8], synth_rng *r, int night) {
    int h = night ? (22 + synth_rng_range(r, 0, 7)) % 24 : synth_rng_range(r, 0, 23);
    int m = 5 * synth_rng_range(r, 0, 11);
    out[0] = (char)('0' + h / 10), out[1] = (char)('0' + h % 10), out[2] = ':';
    out[3] = (char)('0' + m / 10), out[4] = (char)('0' + m % 10), out[5] = 0;
}

static void clock(synth_sb *b, synth_rng *r) {
    char t[8];
    clock_at(t, r, 0);
    sb_put(b, "%s", t);
}

/* ------------------------------------------------------- labs, vitals --- */

/* day 1..los; a resolving tweak moves linearly back to a normal value */
static int lab_value(const synth_patient *p, int lab, int day, synth_rng *r) {
    int normal = synth_rng_range(r, LABS[lab].lo, LABS[lab].hi);
    const acute_condition *a = &ACUTE[p->acute];
    for (int i = 0; i < 3; i++)
        if (a->labs[i].lo || a->labs[i].hi)
            if (a->labs[i].lab == lab) {
                int v = synth_rng_range(r, a->labs[i].lo, a->labs[i].hi);
                if (!a->labs[i].resolves || p->los <= 1) return v;
                return v + (normal - v) * (day - 1) / (p->los - 1 > 0 ? p->los - 1 : 1);
            }
    for (int i = 0; i < p->n_chronic; i++) {
        const lab_tweak *t = &CHRONIC[p->chronic[i]].lab;
        if (t->lab == lab && t->hi) return synth_rng_range(r, t->lo, t->hi);
    }
    return normal;
}

static int condition_has_lab(const synth_patient *p, int lab) {
    for (int i = 0; i < 3; i++)
        if (ACUTE[p->acute].labs[i].lab == lab && ACUTE[p->acute].labs[i].hi) return 1;
    for (int i = 0; i < p->n_chronic; i++)
        if (CHRONIC[p->chronic[i]].lab.lab == lab && CHRONIC[p->chronic[i]].lab.hi) return 1;
    return 0;
}

typedef struct {
    int n;
    int lab[N_LABS];
    int value[N_LABS];
} lab_panel;

static void make_panel(lab_panel *lp, const synth_patient *p, int day, synth_rng *r) {
    lp->n = 0;
    for (int l = 0; l < N_LABS; l++) {
        int basic = l <= L_PLT || (l == L_MG && synth_rng_chance(r, 50));
        if (!basic && !condition_has_lab(p, l)) continue;
        lp->lab[lp->n] = l;
        lp->value[lp->n] = lab_value(p, l, day, r);
        lp->n++;
    }
}

static int panel_get(const lab_panel *lp, int lab) {
    for (int i = 0; i < lp->n; i++)
        if (lp->lab[i] == lab) return lp->value[i];
    return 0;
}

/* Three ways notes write labs: a list with units, chem7/CBC fishbone strings,
 * a terse list without units. */
static void labs_text(synth_sb *b, const lab_panel *lp, synth_rng *r) {
    int style = (int)synth_rng_below(r, 3);
    if (style == 1) {
        sb_put(b, "BMP ");
        const int chem[] = {L_NA, L_K, L_CL, L_HCO3, L_BUN, L_CR, L_GLU};
        for (int i = 0; i < 7; i++) {
            if (i) sb_put(b, "/");
            sb_fixed(b, panel_get(lp, chem[i]), LABS[chem[i]].decimals);
        }
        sb_put(b, "; CBC ");
        const int cbc[] = {L_WBC, L_HGB, L_PLT};
        for (int i = 0; i < 3; i++) {
            if (i) sb_put(b, " > ");
            sb_fixed(b, panel_get(lp, cbc[i]), LABS[cbc[i]].decimals);
        }
        for (int i = 0; i < lp->n; i++) {
            int l = lp->lab[i];
            if (l <= L_PLT) continue;
            sb_put(b, ", %s ", LABS[l].name);
            sb_fixed(b, lp->value[i], LABS[l].decimals);
            if (LABS[l].unit[0]) sb_put(b, "%s%s", l == L_A1C ? "" : " ", LABS[l].unit);
        }
        sb_put(b, ".");
        return;
    }
    for (int i = 0; i < lp->n; i++) {
        int l = lp->lab[i];
        sb_put(b, "%s%s ", i ? ", " : "", LABS[l].name);
        if (l == L_TROP && lp->value[i] < 1) {
            sb_put(b, "<0.01");
        } else {
            sb_fixed(b, lp->value[i], LABS[l].decimals);
        }
        if ((style == 0 || l == L_A1C) && LABS[l].unit[0])
            sb_put(b, "%s%s", l == L_A1C ? "" : " ", LABS[l].unit);
    }
    sb_put(b, ".");
}

static void make_vitals(vitals *v, const synth_patient *p, int day, synth_rng *r) {
    int f = ACUTE[p->acute].vitals;
    /* abnormal on day 1, fading over the first half of the stay */
    int sick = day <= 1 || (day * 2 <= p->los && synth_rng_chance(r, 50));
    v->temp_dc = sick && (f & V_FEVER) ? synth_rng_range(r, 381, 394) : synth_rng_range(r, 363, 375);
    v->hr = sick && (f & V_TACHY) ? synth_rng_range(r, 104, 132) : synth_rng_range(r, 62, 96);
    v->sbp = sick && (f & V_HYPOTENSION) ? synth_rng_range(r, 82, 98)
             : (f & V_HTN) ? synth_rng_range(r, 142, 176) : synth_rng_range(r, 106, 138);
    v->dbp = v->sbp * synth_rng_range(r, 55, 66) / 100;
    v->rr = sick && (f & V_TACHYPNEA) ? synth_rng_range(r, 20, 28) : synth_rng_range(r, 12, 18);
    v->o2_lpm = sick && (f & V_HYPOXIA) ? synth_rng_range(r, 2, 4) : 0;
    v->spo2 = v->o2_lpm ? synth_rng_range(r, 89, 94) : synth_rng_range(r, 94, 99);
}

static void vitals_text(synth_sb *b, const vitals *v, const synth_patient *p, synth_rng *r) {
    char o2[24];
    if (v->o2_lpm) snprintf(o2, sizeof o2, "%d L NC", v->o2_lpm);
    else snprintf(o2, sizeof o2, "RA");
    if (synth_rng_chance(r, 50)) {
        sb_put(b, "T ");
        sb_fixed(b, v->temp_dc, 1);
        sb_put(b, " C, BP %d/%d mmHg, HR %d bpm, RR %d, SpO2 %d%% on %s, Wt ", v->sbp, v->dbp,
               v->hr, v->rr, v->spo2, o2);
        sb_fixed(b, p->weight_dkg, 1);
        sb_put(b, " kg.");
    } else {
        sb_put(b, "Tc ");
        sb_fixed(b, v->temp_dc, 1);
        sb_put(b, " HR %d BP %d/%d RR %d SpO2 %d%% %s.", v->hr, v->sbp, v->dbp, v->rr, v->spo2, o2);
    }
}

/* the "structured" JSON object of a note */
static void structured_json(synth_sb *b, const synth_patient *p, const vitals *v,
                            const lab_panel *lp, int with_meds) {
    sb_put(b, "{");
    if (v) {
        sb_put(b, "\"vitals\": {\"temp_c\": ");
        sb_fixed(b, v->temp_dc, 1);
        sb_put(b, ", \"hr\": %d, \"sbp\": %d, \"dbp\": %d, \"rr\": %d, \"spo2\": %d, "
                  "\"o2_lpm\": %d, \"weight_kg\": ",
               v->hr, v->sbp, v->dbp, v->rr, v->spo2, v->o2_lpm);
        sb_fixed(b, p->weight_dkg, 1);
        sb_put(b, "}, ");
    }
    if (lp) {
        sb_put(b, "\"labs\": {");
        for (int i = 0; i < lp->n; i++) {
            sb_put(b, "%s\"%s\": ", i ? ", " : "", LABS[lp->lab[i]].key);
            sb_fixed(b, lp->value[i], LABS[lp->lab[i]].decimals);
        }
        sb_put(b, "}, ");
    }
    sb_put(b, "\"diagnoses\": [\"%s\"", ACUTE[p->acute].icd);
    for (int i = 0; i < p->n_chronic; i++) sb_put(b, ", \"%s\"", CHRONIC[p->chronic[i]].icd);
    sb_put(b, "]");
    if (with_meds) {
        sb_put(b, ", \"medications\": [");
        int first = 1;
        for (int i = 0; i < 4; i++) {
            const char *m = ACUTE[p->acute].inpatient_meds[i];
            if (!m) continue;
            sb_put(b, "%s", first ? "" : ", ");
            sb_json_string(b, m, strlen(m));
            first = 0;
        }
        for (int i = 0; i < p->n_chronic; i++)
            if (CHRONIC[p->chronic[i]].med) {
                sb_put(b, ", ");
                sb_json_string(b, CHRONIC[p->chronic[i]].med, strlen(CHRONIC[p->chronic[i]].med));
            }
        sb_put(b, "]");
    }
    sb_put(b, "}");
}

/* --------------------------------------------------------------- notes --- */

static const char *const PROGRESS_HEADERS[] = {"Medicine Progress Note", "HOSPITALIST PROGRESS NOTE",
                                               "Daily Progress Note - Internal Medicine"};
static const char *const SUBJECTIVE[] = {
    "Pt seen and examined at bedside this AM, reports feeling better",
    "No acute events overnight per nursing; pt without complaints",
    "Slept poorly, c/o mild nausea without emesis",
    "Tolerating PO diet, ambulating in the hallway with PT",
    "Reports pain 3/10, controlled on the current regimen",
    "Feels weak but improved from yesterday; family at bedside"};
static const char *const GENERAL[] = {"NAD, resting comfortably in bed", "Alert, mildly "
                                      "uncomfortable", "Chronically ill-appearing, NAD",
                                      "Sitting up in chair, conversant"};
static const char *const CARDIAC[] = {"RRR, no m/r/g", "RRR, 2/6 systolic murmur at RUSB",
                                      "RRR, normal S1/S2"};
static const char *const LUNGS[] = {"CTAB", "Clear bilaterally, no wheezes or crackles",
                                    "Mild bibasilar atelectatic crackles that clear with cough"};
static const char *const ABDOMEN[] = {"Soft, NT/ND, +BS", "Obese, soft, non-tender"};
static const char *const EXTREMITIES[] = {"No LE edema", "Warm and well perfused, 2+ DP pulses",
                                          "Trace ankle edema"};
static const char *const NEURO[] = {"A&Ox3, strength 5/5 throughout", "A&Ox3, no focal "
                                    "deficits", "A&Ox2, at baseline per family", "CN II-XII "
                                    "intact, strength 4/5 LLE, 5/5 elsewhere"};
static const char *const OVERNIGHT[] = {
    "Overnight at %s received one dose of PRN oxycodone for pain 6/10.",
    "RN called at %s for HR 112, resolved without intervention.",
    "Blood sugar 64 at %s, treated with juice, repeat 118.",
    "AM labs drawn at %s, reviewed below.",
    "No events overnight; vitals stable since %s."};
static const char *const DISPO[] = {"Continue inpatient care; anticipate d/c in 1-2 days",
                                    "Home with VNA when medically ready", "PT recommends acute "
                                    "rehab; CM following", "Likely d/c home tomorrow if stable"};
static const char *const SIGNOFF[] = {"Discussed with the attending, Dr. [**Name**].",
                                      "Seen and discussed with the attending on rounds.",
                                      "Plan reviewed with pt and family at bedside.",
                                      "Case discussed with the covering team; Dr. [**Name**] "
                                      "aware."};

/* "Acute kidney injury" -> "acute kidney injury" mid-sentence; acronyms
 * ("COPD with ...") keep their case */
static void put_lower_first(synth_sb *b, const char *s) {
    if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z')) {
        char c = (char)(s[0] + 32);
        sb_putn(b, &c, 1);
        s++;
    }
    sb_put(b, "%s", s);
}

static void fill_text(synth_sb *b, const char *fmt, int arg) {
    /* plan strings may hold one %d (a day count) */
    if (strstr(fmt, "%d")) sb_put(b, fmt, arg);
    else if (strstr(fmt, "%%")) sb_put(b, fmt, 0);
    else sb_put(b, "%s", fmt);
}

static void problem_response(synth_sb *b, const synth_patient *p) {
    sb_put(b, "1. %s (%s)", ACUTE[p->acute].name, ACUTE[p->acute].icd);
    for (int i = 0; i < p->n_chronic; i++)
        sb_put(b, "\n%d. %s (%s)", i + 2, CHRONIC[p->chronic[i]].name, CHRONIC[p->chronic[i]].icd);
}

static void progress_note(synth_note *n, const synth_patient *p, int day, synth_rng *r) {
    const acute_condition *a = &ACUTE[p->acute];
    synth_sb *b = &n->text;
    n->type = "progress_note";
    sb_put(b, "%s\nHospital day %d", PICK_OF(r, PROGRESS_HEADERS), day);
    if (a->surgical && day > 1) sb_put(b, ", POD#%d s/p %s", day - 1, a->procedure);
    sb_put(b, "\n\nS: %s. ", PICK_OF(r, SUBJECTIVE));
    char t[8];
    clock_at(t, r, 1);
    sb_put(b, PICK_OF(r, OVERNIGHT), t);
    vitals v;
    make_vitals(&v, p, day, r);
    sb_put(b, "\nO: ");
    vitals_text(b, &v, p, r);
    int af = !strcmp(a->icd, "I48.91");
    for (int i = 0; i < p->n_chronic; i++) af |= !strcmp(CHRONIC[p->chronic[i]].icd, "I48.20");
    const char *cardiac = af ? (v.hr > 100 ? "Irregularly irregular, tachycardic" : "Irregularly "
                                                                                   "irregular, no murmurs")
                          : v.hr > 100 ? "Tachycardic, regular, S1/S2 normal" : PICK_OF(r, CARDIAC);
    /* the condition's own findings while sick, generic ones later in the stay */
    int early = day * 2 <= p->los + 1;
    const char *lungs = a->lungs && early ? a->lungs : PICK_OF(r, LUNGS);
    const char *abd = a->abdomen ? a->abdomen : PICK_OF(r, ABDOMEN);
    const char *ext = a->extremities && early ? a->extremities : PICK_OF(r, EXTREMITIES);
    sb_put(b, "\nExam: %s. CV: %s. Lungs: %s. Abd: %s. Ext: %s. Neuro: %s.\n",
           PICK_OF(r, GENERAL), cardiac, lungs, abd, ext, PICK_OF(r, NEURO));
    lab_panel lp;
    make_panel(&lp, p, day, r);
    sb_put(b, "Labs (");
    clock(b, r);
    sb_put(b, "): ");
    labs_text(b, &lp, r);
    sb_put(b, "\n\nA/P: ");
    if (synth_rng_chance(r, 30)) sb_put(b, "%s [**Name**] is a ", p->female ? "Ms." : "Mr.");
    age_phrase(b, p, r);
    sb_put(b, " with ");
    pmh_phrase(b, p);
    sb_put(b, " admitted with ");
    put_lower_first(b, a->name);
    if (a->surgical && day > 1) sb_put(b, ", now POD#%d", day - 1);
    else sb_put(b, ", hospital day %d", day);
    sb_put(b, ".\n# %s (%s): %s. ", a->short_name, a->icd, PICK_OF(r, a->assessment));
    fill_text(b, PICK_OF(r, a->plan), day);
    sb_put(b, ".\n");
    for (int i = 0; i < p->n_chronic; i++) {
        const chronic_condition *c = &CHRONIC[p->chronic[i]];
        sb_put(b, "# %s (%s): %s.\n", c->abbr, c->icd, PICK_OF(r, c->plan));
    }
    sb_put(b, "# FEN/PPx: %s; DVT ppx with %s.\n",
           synth_rng_chance(r, 50) ? "regular diet, replete lytes PRN" : "cardiac diet, "
                                                                         "K > 4, Mg > 2",
           synth_rng_chance(r, 50) ? "enoxaparin 40 mg SC daily" : "heparin 5000 units SC q8h");
    sb_put(b, "Dispo: %s.\n%s", PICK_OF(r, DISPO), PICK_OF(r, SIGNOFF));

    structured_json(&n->structured, p, &v, &lp, 1);
    n->task = "problem_list";
    sb_put(&n->prompt_head, "Extract the active problem list, with ICD-10 codes, from the "
                            "following progress note.\n\n");
    problem_response(&n->response, p);
}

static const char *const COMPARISON[] = {"None available", "Chest radiograph from 1 day prior",
                                         "Prior study from 8 months ago",
                                         "Outside CT from [**Hospital**], report only"};
static const char *const INCIDENTAL[] = {
    "Mild degenerative changes of the thoracic spine",
    "4 mm RUL pulmonary nodule; no follow-up needed for a low-risk patient per Fleischner "
    "guidelines",
    "Atherosclerotic calcification of the aorta and coronary arteries",
    "Small hiatal hernia",
    "Multilevel degenerative disc disease, most pronounced at L4-L5 and L5-S1"};

static void radiology_report(synth_note *n, const synth_patient *p, int day, synth_rng *r) {
    const acute_condition *a = &ACUTE[p->acute];
    synth_sb *b = &n->text;
    n->type = "radiology_report";
    const char *impression = PICK_OF(r, a->impression);
    sb_put(b, "RADIOLOGY REPORT\nExam: %s\nClinical indication: ", a->study);
    age_phrase(b, p, r);
    sb_put(b, " with %s. Hospital day %d.\nTechnique: %s.\nComparison: %s.\nFindings: %s\n"
              "IMPRESSION:\n1. %s.\n",
           a->indication, day, a->technique, PICK_OF(r, COMPARISON), PICK_OF(r, a->findings),
           impression);
    if (synth_rng_chance(r, 60)) sb_put(b, "2. %s.\n", PICK_OF(r, INCIDENTAL));
    if (synth_rng_chance(r, 50)) {
        sb_put(b, "Findings discussed with the ordering team at ");
        clock(b, r);
        sb_put(b, ". ");
    }
    sb_put(b, "Electronically signed by the attending radiologist.");

    structured_json(&n->structured, p, NULL, NULL, 0);
    n->task = "impression_summary";
    sb_put(&n->prompt_head, "Summarize the impression of this radiology report in one "
                            "sentence.\n\n");
    sb_put(&n->response, "%s.", impression);
}

static const char *const FOLLOW_UP[] = {
    "PCP in 1-2 weeks with a BMP at that visit",
    "PCP within 7 days; specialty clinic in 2-4 weeks",
    "PCP in 1 week; repeat CBC in 3-5 days",
    "Clinic follow-up in 2 weeks; call for fever > 38.5 C or worsening symptoms"};
static const char *const DISPOSITION[] = {"Home", "Home with VNA services", "Skilled nursing "
                                          "facility", "Acute rehabilitation"};

static void discharge_summary(synth_note *n, const synth_patient *p, synth_rng *r) {
    const acute_condition *a = &ACUTE[p->acute];
    synth_sb *b = &n->text;
    n->type = "discharge_summary";
    sb_put(b, "DISCHARGE SUMMARY\nLength of stay: %d days. Attending: Dr. [**Name**]. Service: "
              "%s.\nAdmission diagnosis: %s.\nDischarge diagnoses:\n1. %s (%s)\n",
           p->los, a->surgical ? "General Surgery" : "Medicine", a->name, a->name, a->icd);
    for (int i = 0; i < p->n_chronic; i++)
        sb_put(b, "%d. %s (%s)\n", i + 2, CHRONIC[p->chronic[i]].name, CHRONIC[p->chronic[i]].icd);
    sb_put(b, "\nHistory of present illness: ");
    age_phrase(b, p, r);
    sb_put(b, " with ");
    pmh_phrase(b, p);
    sb_put(b, " who presented %s with %s. ",
           synth_rng_chance(r, 50) ? "to the ED" : "from [**Hospital**]", PICK_OF(r, a->presentation));
    if (synth_rng_chance(r, 50)) { /* a year alone is not an identifier (Safe Harbor) */
        static const char *const psh[] = {"appendectomy", "cholecystectomy", "R TKA", "L THA",
                                          "C-section", "CABG x3", "tonsillectomy", "hernia repair"};
        const char *op = SYNTH_PICK(r, psh);
        if (!p->female && !strcmp(op, "C-section")) op = "hernia repair";
        sb_put(b, "PSH: %s (%d)", op, synth_rng_range(r, 1985, 2022));
        if (synth_rng_chance(r, 50))
            sb_put(b, ", last colonoscopy in %d was normal", synth_rng_range(r, 2010, 2022));
        sb_put(b, ". ");
    }
    vitals ed;
    make_vitals(&ed, p, 1, r);
    sb_put(b, "In the ED: ");
    vitals_text(b, &ed, p, r);
    sb_put(b, "\n\nHospital course: %s", PICK_OF(r, a->course));
    if (a->procedure) sb_put(b, " Procedure: %s on hospital day 1.", a->procedure);
    for (int i = 0; i < p->n_chronic; i++)
        sb_put(b, " %s: %s.", CHRONIC[p->chronic[i]].abbr, PICK_OF(r, CHRONIC[p->chronic[i]].plan));
    vitals v;
    make_vitals(&v, p, p->los, r);
    sb_put(b, "\n\nDischarge vitals: ");
    vitals_text(b, &v, p, r);
    lab_panel lp;
    make_panel(&lp, p, p->los, r);
    sb_put(b, "\nDischarge labs: ");
    labs_text(b, &lp, r);
    sb_put(b, "\n\nDischarge medications:\n");
    int k = 1;
    for (int i = 0; i < 3; i++)
        if (a->discharge_meds[i]) sb_put(b, "%d. %s\n", k++, a->discharge_meds[i]);
    for (int i = 0; i < p->n_chronic; i++)
        if (CHRONIC[p->chronic[i]].med) sb_put(b, "%d. %s\n", k++, CHRONIC[p->chronic[i]].med);
    sb_put(b, "\nFollow-up: %s.\nCondition at discharge: %s. Disposition: %s.",
           PICK_OF(r, FOLLOW_UP), synth_rng_chance(r, 70) ? "stable" : "improved, ambulating with "
                                                                       "a walker",
           PICK_OF(r, DISPOSITION));

    structured_json(&n->structured, p, &v, &lp, 1);
    n->task = "discharge_medications";
    sb_put(&n->prompt_head, "List the discharge medications in the following discharge "
                            "summary.\n\n");
    int first = 1;
    for (int i = 0; i < 3; i++)
        if (a->discharge_meds[i]) {
            sb_put(&n->response, "%s- %s", first ? "" : "\n", a->discharge_meds[i]);
            first = 0;
        }
    for (int i = 0; i < p->n_chronic; i++)
        if (CHRONIC[p->chronic[i]].med) sb_put(&n->response, "\n- %s", CHRONIC[p->chronic[i]].med);
}

void synth_note_make(synth_note *n, const synth_patient *p, int note_index, int n_notes,
                     synth_rng *r) {
    sb_reset(&n->text);
    sb_reset(&n->structured);
    sb_reset(&n->prompt_head);
    sb_reset(&n->response);
    /* one admission: the last note is the discharge summary, the second a radiology
     * report, the rest progress notes by hospital day */
    if (n_notes >= 2 && note_index == n_notes - 1) {
        discharge_summary(n, p, r);
    } else if (n_notes >= 3 && note_index == 1) {
        radiology_report(n, p, 1 + (p->los > 2), r);
    } else {
        int progress_before = note_index - (n_notes >= 3 && note_index > 1);
        int day = 1 + progress_before * (p->los > 1 ? p->los - 1 : 1) / (n_notes > 2 ? n_notes - 2 : 1);
        if (day > p->los) day = p->los;
        if (ACUTE[p->acute].surgical && day < 2 && p->los >= 2) day = 2; /* post-op notes */
        progress_note(n, p, day, r);
    }
}

void synth_note_free(synth_note *n) {
    sb_free(&n->text);
    sb_free(&n->structured);
    sb_free(&n->prompt_head);
    sb_free(&n->response);
}
